"""The model version record (DESIGN.md "Records"): what an auditor needs to trace a model."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ModelVersion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version_id: str = Field(description="mv-<hash of the weight files' hashes>: the same weights, the same id.")
    kind: Literal["candidate", "champion", "challenger", "shadow"] = Field(
        "candidate", description="Role at registration; aliases and their history come with the registry issue.")
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    base: str = Field(description="Base model: a Hugging Face id, a folder, or the locally built tiny model.")
    profile: str = Field(description="params.yaml model profile that trained it.")
    weights_uri: str = Field(description="Store URI of the model folder (full weights; LoRA merged).")
    files: dict[str, str] = Field(description="sha256 of every file under weights_uri.")
    params: dict[str, Any] = Field(description="The model and train sections of params.yaml used.")
    dataset: dict[str, Any] = Field(description="Dataset version: tag, registry git revision, manifest md5, counts.")
    code_rev: str = Field(description="Git commit of the training code (+'-dirty').")
    metrics: dict[str, Any] = Field(description="Each stage's metrics (pretrain, sft, grpo, heldout).")
    gate: dict[str, Any] | None = Field(None, description="Gate decision, once evaluated.")
    approvals: tuple[dict[str, Any], ...] = ()
    deployments: tuple[dict[str, Any], ...] = ()
