"""Tests of the report kit (vigil.reports)."""
