"""Models: the tiny profile (a small Qwen2.5-VL built locally) and the transformers compat shim."""

from vigil.models.compat import ensure_transformers_compat
from vigil.models.tiny import TinyModelConfig, build_tiny_model

__all__ = ["TinyModelConfig", "build_tiny_model", "ensure_transformers_compat"]
