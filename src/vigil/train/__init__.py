"""Training: data preparation, the tiny vision pretrain stage, SFT and GRPO (TRL), checkpoints."""
