"""Deployment settings: where things live and how to reach them. From ``VIGIL_*`` env or ``.env``.

Strict on purpose: a misspelt ``VIGIL_`` variable or a value of the wrong type stops the run at
start with the key, the value and what is allowed, instead of silently using a default.
Pipeline knobs (what to crawl, how many frames) live in ``params.yaml`` instead (see params.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vigil.config.errors import ConfigError

ENV_PREFIX = "VIGIL_"


class Settings(BaseSettings):
    """Where Vigil keeps its state and which services it talks to."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8",
        extra="ignore",  # unknown VIGIL_* keys are caught by _reject_unknown_keys with a better message
        frozen=True, validate_default=True,
    )

    workspace: Path = Field(Path(".vigil"), description="Folder for local state: data registry, crawl state, caches, reports.")
    params_file: Path = Field(Path("params.yaml"), description="Pipeline parameters (DVC-tracked). When set, the "
                                                               "file must exist; unset, ./params.yaml is used when "
                                                               "present and the built-in defaults otherwise.")
    params_snapshot: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$",
        description="sha256 of a stored parameter snapshot to run with instead of params_file; set by the train "
                    "job for the DVC stages of one run, so that they all train with the run's parameters.")
    store_backend: Literal["local", "s3"] = Field("local", description="'local' = a folder (no server); 's3' = any S3 endpoint such as MinIO.")
    store_root: Path | None = Field(None, description="Folder of the local store; default <workspace>/store.")
    s3_endpoint: str = Field("127.0.0.1:9000", description="host:port of the S3 endpoint (deploy/docker-compose.yml "
                                                           "publishes MinIO here): no scheme and no path; "
                                                           "VIGIL_S3_SECURE=true selects https.")
    s3_access_key: SecretStr = Field(SecretStr(""), description="S3 access key.")
    s3_secret_key: SecretStr = Field(SecretStr(""), description="S3 secret key.")
    s3_secure: bool = Field(False, description="Use HTTPS for the S3 endpoint.")
    s3_region: str | None = Field(None, description="S3 region, if the server wants one.")
    bucket: str = Field("vigil", min_length=3, description="Bucket for media, DVC remote, reports and models.")
    ledger_bucket: str | None = Field(None, description="Separate bucket for the lineage ledger (created with object lock on S3); default: the main bucket.")
    ledger_retain_days: int = Field(0, ge=0, description="Object-lock retention for ledger events, days (S3 with ledger_bucket only); 0 = no lock.")
    prefect_api_url: str | None = Field(None, description="Prefect server API (e.g. http://127.0.0.1:4200/api); unset = ephemeral in-process API.")
    teacher_url: str | None = Field(None, description="OpenAI-compatible endpoint of the annotation teacher (e.g. http://127.0.0.1:8000/v1); unset = synthetic annotation.")
    teacher_model: str = Field("teacher", description="Model name sent to the teacher endpoint.")
    teacher_api_key: SecretStr = Field(SecretStr(""), description="Bearer key for the teacher endpoint, if it needs one.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")

    @field_validator("s3_endpoint")
    @classmethod
    def _host_port(cls, value: str) -> str:
        problem = endpoint_problem(value)
        if problem:
            raise ValueError(f"{problem}: write it as host:port (e.g. 127.0.0.1:9000) and set VIGIL_S3_SECURE=true "
                             "for https")
        return value

    @model_validator(mode="after")
    def _retention_needs_a_ledger_bucket(self):
        if self.ledger_retain_days > 0 and not self.ledger_bucket:
            raise ValueError("ledger_retain_days > 0 needs VIGIL_LEDGER_BUCKET: retention requires a bucket "
                             "created with object lock, which Vigil creates for the ledger alone")
        return self

    @property
    def params_file_explicit(self) -> bool:
        """Whether VIGIL_PARAMS_FILE (environment, .env or an override) named the parameters file: a named file
        must exist, while the implicit ./params.yaml may be absent (see vigil.config.params.load_params)."""
        return "params_file" in self.model_fields_set

    @property
    def workspace_path(self) -> Path:
        return self.workspace.absolute()

    @property
    def store_path(self) -> Path:
        return (self.store_root or self.workspace / "store").absolute()

    def masked(self) -> dict[str, str]:
        """The effective settings as strings, secrets shown as '***' (or '(unset)')."""
        out: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                out[name] = "***" if value.get_secret_value() else "(unset)"
            else:
                out[name] = "(unset)" if value is None else str(value)
        return out


def endpoint_problem(endpoint: str) -> str | None:
    """Why ``endpoint`` is not the ``host[:port]`` the MinIO client takes (None when it is). A scheme is
    refused rather than turned into VIGIL_S3_SECURE: two settings saying one thing could disagree."""
    if not endpoint.strip():
        return "an empty endpoint"
    if "://" in endpoint:
        return f"a URL with the scheme {endpoint.partition('://')[0]!r}"
    if any(c.isspace() for c in endpoint):
        return "spaces in the endpoint"
    parts = urlsplit(f"//{endpoint}")
    if parts.path or parts.query or parts.fragment or "?" in endpoint or "#" in endpoint:
        return "a path after the host"
    if parts.username is not None or parts.password is not None:
        return "credentials in the endpoint (use VIGIL_S3_ACCESS_KEY and VIGIL_S3_SECRET_KEY)"
    if not parts.hostname:
        return "no host"
    try:
        port = parts.port
    except ValueError:
        return f"port {endpoint.rpartition(':')[2]!r} is not a port number (1-65535)"
    if port == 0:
        return "port 0"
    return None


def _dotenv_keys(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v or "" for k, v in dotenv_values(path).items()}


def _reject_unknown_keys(environ: dict[str, str]) -> None:
    allowed = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    unknown = sorted(k for k in environ if k.upper().startswith(ENV_PREFIX) and k.upper() not in allowed)
    if unknown:
        raise ConfigError(
            f"unknown setting {', '.join(unknown)}; allowed VIGIL_ settings are: {', '.join(sorted(allowed))}"
        )


def format_validation_error(exc: ValidationError, source: str, key_of=lambda loc: ".".join(map(str, loc))) -> str:
    lines = [f"invalid configuration in {source}:"]
    for err in exc.errors():
        key = key_of(err["loc"])
        value = err.get("input")
        lines.append(f"  {key} = {value!r}: {err['msg']}")
    return "\n".join(lines)


def load_settings(env_file: str | Path | None = ".env", **overrides) -> Settings:
    """Settings from the environment and ``env_file``; raises :class:`ConfigError` naming bad keys."""
    env_path = Path(env_file) if env_file else None
    _reject_unknown_keys({**(_dotenv_keys(env_path) if env_path else {}), **os.environ})
    try:
        return Settings(_env_file=env_path, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise ConfigError(format_validation_error(
            exc, "environment/.env",
            key_of=lambda loc: ENV_PREFIX + "_".join(map(str, loc)).upper() if loc else "settings",
        )) from exc
