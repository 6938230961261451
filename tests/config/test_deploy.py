"""deploy/docker-compose.yml: no Docker engine here, so check that it parses and matches the code."""

from __future__ import annotations

from pathlib import Path

import yaml
from dotenv import dotenv_values

from vigil.config.settings import ENV_PREFIX, Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _compose():
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def _published(service: dict, container_port: int) -> tuple[str, int]:
    for mapping in service["ports"]:
        host_ip, host_port, port = mapping.split(":")
        if int(port) == container_port:
            return host_ip, int(host_port)
    raise AssertionError(f"port {container_port} not published")


def test_compose_has_minio_postgres_and_prefect():
    services = _compose()["services"]
    assert {"minio", "postgres", "prefect-server"} <= set(services)
    assert "postgresql" in services["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert services["prefect-server"]["image"].startswith("prefecthq/prefect:3.8.8")


def test_minio_port_is_the_default_s3_endpoint():
    host_ip, host_port = _published(_compose()["services"]["minio"], 9000)
    assert Settings.model_fields["s3_endpoint"].default == f"{host_ip}:{host_port}"


def test_minio_credentials_come_from_the_settings_variables():
    env = _compose()["services"]["minio"]["environment"]
    assert "VIGIL_S3_ACCESS_KEY" in env["MINIO_ROOT_USER"]
    assert "VIGIL_S3_SECRET_KEY" in env["MINIO_ROOT_PASSWORD"]


def test_env_example_is_accepted_by_the_settings_and_points_at_compose():
    example = dotenv_values(DEPLOY / ".env.example")
    vigil_keys = {k.removeprefix(ENV_PREFIX).lower(): v for k, v in example.items() if k.startswith(ENV_PREFIX)}
    settings = Settings(_env_file=None, **vigil_keys)
    host_ip, host_port = _published(_compose()["services"]["prefect-server"], 4200)
    assert settings.prefect_api_url == f"http://{host_ip}:{host_port}/api"
    assert settings.s3_endpoint == f"{host_ip}:{_published(_compose()['services']['minio'], 9000)[1]}"
    assert settings.store_backend == "s3"


def test_no_secret_is_committed_in_compose():
    text = (DEPLOY / "docker-compose.yml").read_text()
    assert "minioadmin" not in text and "change-me" not in text
