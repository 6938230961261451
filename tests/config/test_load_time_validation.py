"""Values that used to fail late (a traceback mid-run, or silently wrong work) are refused when the
parameters and settings load: a ConfigError (exit 2) naming the dotted key, the value and what is allowed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vigil.config.errors import ConfigError
from vigil.config.params import CRON_MACROS, Params, cron_problem, load_configured_params, load_params, parse_params
from vigil.config.settings import load_settings

REPO = Path(__file__).resolve().parents[2]


def _refused(doc: dict) -> str:
    with pytest.raises(ConfigError) as err:
        parse_params(doc)
    return str(err.value)


# --- every default still loads --------------------------------------------------------------------------------


def test_the_defaults_and_the_repo_params_load(clean_env):
    # given the built-in defaults, the committed params.yaml and a clean environment, then all of them load
    assert Params() == parse_params({})
    assert load_params(REPO / "params.yaml").crawl.schedule_cron
    assert load_settings().s3_endpoint == "127.0.0.1:9000"


# --- 1. a parameters file that was named must exist -----------------------------------------------------------


def test_a_named_params_file_that_does_not_exist_is_refused(clean_env, tmp_path):
    # when a file is named by argument, then it must exist
    with pytest.raises(ConfigError) as err:
        load_params(tmp_path / "paramz.yaml", origin="--params")
    assert str(tmp_path / "paramz.yaml") in str(err.value) and "--params" in str(err.value)
    assert "not found" in str(err.value)
    # and a folder is not a parameters file
    with pytest.raises(ConfigError, match="is not a file"):
        load_params(tmp_path)


def test_vigil_params_file_naming_a_missing_file_is_refused(clean_env, tmp_path):
    # given VIGIL_PARAMS_FILE set to a file that does not exist
    clean_env.setenv("VIGIL_PARAMS_FILE", str(tmp_path / "gone.yaml"))
    settings = load_settings()
    assert settings.params_file_explicit
    # then loading the configured parameters names the file and the variable
    with pytest.raises(ConfigError) as err:
        load_configured_params(settings)
    assert "gone.yaml" in str(err.value) and "VIGIL_PARAMS_FILE" in str(err.value)
    # and --params wins over it, and is held to the same rule
    with pytest.raises(ConfigError, match=r"from --params"):
        load_configured_params(settings, tmp_path / "other.yaml")


def test_the_implicit_params_yaml_may_be_absent_and_then_means_the_defaults(clean_env, caplog):
    # given no file named anywhere and no ./params.yaml (clean_env's cwd is an empty tmp folder)
    settings = load_settings()
    assert not settings.params_file_explicit
    # then the built-in defaults apply, said once at INFO
    with caplog.at_level("INFO", logger="vigil.config.params"):
        assert load_configured_params(settings) == Params()
    assert [r.levelname for r in caplog.records if "built-in default" in r.getMessage()] == ["INFO"]
    # while a ./params.yaml that is there is read
    Path("params.yaml").write_text(yaml.safe_dump({"ingest": {"frames": 4}}))
    assert load_configured_params(settings).ingest.frames == 4


# --- 2. crawl sources ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("url, why", [
    ("ftp://example.org/gallery/", "does not fetch ftp"),
    ("file:///srv/gallery/", "does not fetch file"),
    ("gallery/", "relative URL"),
    ("", "empty URL"),
    ("https://", "without a host"),
    ("http:///gallery", "without a host"),
    ("https://example.org:99999/", "not a port number"),
    (" https://example.org/", "spaces"),
    ("embedded:zo", "does not fetch embedded"),
])
def test_a_source_url_the_crawler_cannot_fetch_is_refused(url, why):
    message = _refused({"crawl": {"sources": [{"name": "a", "url": url}]}})
    assert f"crawl.sources.0.url = {url!r}" in message
    assert why in message and "http:// or https://" in message and "embedded:zoo" in message


@pytest.mark.parametrize("url", ["embedded:zoo", "https://example.org/gallery/", "http://127.0.0.1:8765/"])
def test_crawlable_source_urls_load(url):
    assert parse_params({"crawl": {"sources": [{"name": "a", "url": url}]}}).crawl.sources[0].url == url


def test_two_sources_of_one_name_are_refused():
    # a clip's provenance names its source: two sources of one name could not be told apart
    message = _refused({"crawl": {"sources": [{"name": "site", "url": "https://a.example/"},
                                              {"name": "site", "url": "https://b.example/"}]}})
    assert "crawl.sources" in message and "'site'" in message and "own name" in message


def test_a_blank_source_name_is_refused():
    assert "crawl.sources.0.name = ' '" in _refused({"crawl": {"sources": [{"name": " ", "url": "embedded:zoo"}]}})


# --- 3. zoo generators (the names are checked by vigil.jobs.runtime; config checks the list's shape) -----------


@pytest.mark.parametrize("generators, fragment", [
    ([], "zoo.generators = []"),
    (["a", "a"], "more than once"),
    (["  "], "empty generator name"),
])
def test_a_malformed_generator_list_is_refused(generators, fragment):
    message = _refused({"zoo": {"generators": generators}})
    assert "zoo.generators" in message and fragment in message


# --- 4. the S3 endpoint is host:port --------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint, why", [
    ("http://127.0.0.1:9000", "scheme 'http'"),
    ("https://s3.example.org", "scheme 'https'"),
    ("127.0.0.1:9000/bucket", "path"),
    ("", "empty"),
    ("127.0.0.1:port", "not a port number"),
    ("key:secret@127.0.0.1:9000", "credentials"),
])
def test_an_s3_endpoint_that_is_not_host_port_is_refused(clean_env, endpoint, why):
    clean_env.setenv("VIGIL_S3_ENDPOINT", endpoint)
    with pytest.raises(ConfigError) as err:
        load_settings()
    message = str(err.value)
    assert f"VIGIL_S3_ENDPOINT = {endpoint!r}" in message
    assert why in message and "host:port" in message and "VIGIL_S3_SECURE" in message


@pytest.mark.parametrize("endpoint", ["127.0.0.1:9000", "minio:9000", "s3.example.org", "[::1]:9000"])
def test_host_port_endpoints_load(clean_env, endpoint):
    clean_env.setenv("VIGIL_S3_ENDPOINT", endpoint)
    assert load_settings().s3_endpoint == endpoint


# --- 5. min/max pairs, non-finite numbers, user agent, cron -----------------------------------------------------


@pytest.mark.parametrize("section, low, high, low_value, high_value", [
    ("validation", "min_fake_fraction", "max_fake_fraction", 0.9, 0.5),
    ("validation", "min_fps", "max_fps", 30.0, 24.0),
    ("validation", "min_side", "max_side", 512, 256),
    ("zoo", "min_duration_s", "max_duration_s", 5.0, 4.0),
])
def test_a_minimum_above_its_maximum_is_refused(section, low, high, low_value, high_value):
    message = _refused({section: {low: low_value, high: high_value}})
    assert f"{section}.{high} = {high_value!r}" in message and low in message and str(low_value) in message


def test_model_min_pixels_above_max_pixels_is_refused():
    message = _refused({"model": {"profiles": {"tiny": {"min_pixels": 4096, "max_pixels": 3136}}}})
    assert "model.profiles.tiny.min_pixels = 4096" in message and "max_pixels (3136)" in message


def test_a_gate_metric_whose_minimum_exceeds_its_maximum_is_refused():
    message = _refused({"gate": {"recent": {"min": {"fpr_real": 0.5}, "max": {"fpr_real": 0.4}}}})
    assert "gate.recent.max" in message and "fpr_real min 0.5 > max 0.4" in message


@pytest.mark.parametrize("key, text", [
    ("crawl.total_timeout_s", ".inf"),
    ("crawl.read_timeout_s", ".nan"),
    ("annotate.timeout_s", ".inf"),
    ("crawl.near_duplicate_distance", ".inf"),
    ("gate.fixed.min.accuracy", ".nan"),
])
def test_infinite_or_nan_numbers_are_refused(key, text):
    # given a YAML document with one non-finite number at ``key``
    *sections, leaf = key.split(".")
    doc: dict = {}
    node = doc
    for part in sections:
        node = node.setdefault(part, {})
    node[leaf] = yaml.safe_load(text)
    message = _refused(doc)
    assert f"{key} = {node[leaf]!r}" in message and "finite number" in message


@pytest.mark.parametrize("agent", ["", "   ", "Vigil\r\nX-Injected: 1", "Vigil\u00e9"])
def test_a_blank_or_unsendable_user_agent_is_refused(agent):
    message = _refused({"crawl": {"user_agent": agent}})
    assert f"crawl.user_agent = {agent!r}" in message and "printable ASCII" in message


BAD_CRONS = ["", "0 */6 * *", "* * * * * *", "60 * * * *", "0 24 * * *", "0 0 0 * *", "0 0 * 13 *",
             "0 0 * * 8", "*/0 * * * *", "1,,2 * * * *", "-1 * * * *", "0 0 L * *", "every 6 hours", "@often"]
GOOD_CRONS = ["0 */6 * * *", "*/15 * * * *", "0 0 * * mon-fri", "30 2 1,15 jan,JUL *", "0-59/10 * * * 7",
              "5/15 * * * *", "00 01 * * sun"] + list(CRON_MACROS)


@pytest.mark.parametrize("cron", BAD_CRONS)
def test_an_invalid_cron_schedule_is_refused(cron):
    message = _refused({"crawl": {"schedule_cron": cron}})
    assert f"crawl.schedule_cron = {cron!r}" in message and "five fields" in message


@pytest.mark.parametrize("cron", GOOD_CRONS)
def test_valid_cron_schedules_load(cron):
    assert parse_params({"crawl": {"schedule_cron": cron}}).crawl.schedule_cron == cron


def test_every_cron_schedule_accepted_here_is_accepted_by_prefect():
    # Prefect validates deployment schedules with its vendored croniter; importing prefect in this process
    # would read its settings early, so the comparison runs in a child process
    script = ("import json, sys\n"
              "from prefect._internal.schemas.validators import validate_cron_string\n"
              "bad = []\n"
              "for cron in json.loads(sys.argv[1]):\n"
              "    try:\n"
              "        validate_cron_string(cron)\n"
              "    except ValueError:\n"
              "        bad.append(cron)\n"
              "print(json.dumps(bad))\n")
    accepted = [c for c in GOOD_CRONS + BAD_CRONS if cron_problem(c) is None]
    assert accepted == GOOD_CRONS
    done = subprocess.run([sys.executable, "-c", script, json.dumps(accepted)], capture_output=True, text=True,
                          timeout=120, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
