"""Settings (VIGIL_* / .env) and params.yaml: typed, strict, and clear when wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vigil.config.errors import ConfigError
from vigil.config.params import Params, load_params, params_to_yaml, parse_params
from vigil.config.settings import load_settings

REPO = Path(__file__).resolve().parents[2]


def test_defaults_are_the_embedded_local_store(clean_env):
    settings = load_settings()
    assert settings.store_backend == "local"
    assert settings.store_path == (Path(".vigil") / "store").absolute()
    assert settings.prefect_api_url is None


def test_env_and_dotenv_are_read(clean_env, tmp_path):
    (tmp_path / ".env").write_text("VIGIL_STORE_BACKEND=s3\nVIGIL_S3_SECRET_KEY=hunter2\n")
    clean_env.setenv("VIGIL_BUCKET", "other-bucket")
    settings = load_settings()
    assert (settings.store_backend, settings.bucket) == ("s3", "other-bucket")
    assert settings.s3_secret_key.get_secret_value() == "hunter2"


def test_unknown_setting_is_named_with_the_allowed_ones(clean_env):
    clean_env.setenv("VIGIL_STORE_BAKEND", "s3")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "VIGIL_STORE_BAKEND" in str(err.value)
    assert "VIGIL_STORE_BACKEND" in str(err.value)


def test_unknown_setting_in_dotenv_is_refused(clean_env, tmp_path):
    (tmp_path / ".env").write_text("VIGIL_TYPO=1\n")
    with pytest.raises(ConfigError, match="VIGIL_TYPO"):
        load_settings()


def test_ill_typed_setting_names_key_value_and_rule(clean_env):
    clean_env.setenv("VIGIL_STORE_BACKEND", "ftp")
    with pytest.raises(ConfigError) as err:
        load_settings()
    message = str(err.value)
    assert "VIGIL_STORE_BACKEND" in message and "'ftp'" in message and "'local'" in message


def test_masked_settings_hide_secrets(clean_env):
    clean_env.setenv("VIGIL_S3_SECRET_KEY", "top-secret-value")
    shown = load_settings().masked()
    assert shown["s3_secret_key"] == "***"
    assert "top-secret-value" not in repr(shown)
    assert shown["s3_access_key"] == "(unset)"


def test_repo_params_yaml_is_valid_and_complete():
    params = load_params(REPO / "params.yaml")
    doc = yaml.safe_load((REPO / "params.yaml").read_text())
    # every section of the schema is spelled out in the committed file, so people see every knob
    assert set(doc) == set(Params.model_fields)
    assert params.crawl.sources[0].url == "embedded:zoo"


@pytest.mark.parametrize(
    "doc, fragment",
    [
        ({"crawl": {"max_byts": 3}}, "crawl.max_byts"),
        ({"ingest": {"frames": "many"}}, "ingest.frames = 'many'"),
        ({"ingest": {"frames": 0}}, "greater than or equal to 1"),
        ({"zoo": {"width": 300}}, "zoo.width"),
        ({"crawl": {"sources": [{"name": "a", "url": "https://b.example/", "bogus": 1}]}}, "crawl.sources.0.bogus"),
        ({"typo_section": {}}, "typo_section"),
        ({"ingest": {"train_fraction": 0.9, "val_fraction": 0.2}}, "at most 1"),
    ],
)
def test_bad_params_stop_with_key_and_value(doc, fragment):
    with pytest.raises(ConfigError) as err:
        parse_params(doc)
    assert fragment in str(err.value)


def test_unknown_key_lists_allowed_keys():
    with pytest.raises(ConfigError) as err:
        parse_params({"crawl": {"max_byts": 3}})
    assert "allowed keys at crawl:" in str(err.value) and "max_bytes" in str(err.value)


def test_params_roundtrip_through_yaml():
    params = Params()
    assert parse_params(yaml.safe_load(params_to_yaml(params))) == params


def test_params_are_frozen():
    with pytest.raises(Exception):
        Params().ingest.frames = 3  # type: ignore[misc]


def test_ledger_retention_without_its_own_bucket_is_refused(clean_env):
    clean_env.setenv("VIGIL_LEDGER_RETAIN_DAYS", "30")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "VIGIL_LEDGER_BUCKET" in str(err.value)


def test_the_snapshot_hash_ignores_the_key_order_of_mappings(tmp_path):
    # given the repo's params.yaml, and the same document written back with every key sorted
    # (mappings such as model.profiles and train rewards come back in another order)
    doc = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    resorted = tmp_path / "params.yaml"
    resorted.write_text(yaml.safe_dump(doc, sort_keys=True))
    # then both load to the same parameters and the same snapshot, text and hash
    from vigil.config.params import params_snapshot

    assert params_snapshot(parse_params(doc)) == params_snapshot(load_params(resorted))
