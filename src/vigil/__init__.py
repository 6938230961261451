"""Vigil: continuous training for an explainable detector of AI-generated video."""

__version__ = "0.1.0"
