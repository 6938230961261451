"""Evaluation: evaluation sets, predictions (offline or through the serving API), the gate report."""
