"""Pipeline parameters from ``params.yaml`` (DVC-tracked): one typed, strict, frozen model.

An unknown key, a missing section or a value of the wrong type stops the run at start with the
dotted key, the value and what is allowed. So does a value that could only fail later: a minimum
above its maximum, an infinite or NaN number, a source URL the crawler cannot fetch, a cron
schedule Prefect would refuse, a parameters file that was named but does not exist. Later issues
add sections (train, evaluate, gate…); each section is its own model here, so that one place holds
the schema. Checks that need a domain package (the zoo's generator names) are in
``vigil.jobs.runtime.check_params``, since this package imports no other Vigil package.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from vigil.config.errors import ConfigError
from vigil.config.settings import ENV_PREFIX, Settings, format_validation_error

log = logging.getLogger(__name__)

DEFAULT_PARAMS_FILE = Path("params.yaml")
EMBEDDED_ZOO_URL = "embedded:zoo"


class _Strict(BaseModel):
    # allow_inf_nan=False: an infinite timeout or a NaN threshold would pass every ge/gt bound and fail
    # (or hang) much later, so every float of every section must be a finite number.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


def _not_below(value, info: ValidationInfo, low_field: str):
    """A maximum may not be below its minimum ``low_field`` (declared, so validated, before it): such a
    pair refuses every input, or silently every batch, long after the run started."""
    low = info.data.get(low_field)  # absent when the minimum itself was invalid: that error is reported
    if value is not None and low is not None and value < low:
        raise PydanticCustomError("min_above_max", "is below {low_field} ({low}): a maximum must be at least "
                                  "its minimum; raise this or lower {low_field}",
                                  {"low_field": low_field, "low": low})
    return value


def _not_above(value, info: ValidationInfo, high_field: str):
    """The same rule for a minimum declared after its maximum."""
    high = info.data.get(high_field)
    if value is not None and high is not None and value > high:
        raise PydanticCustomError("min_above_max", "exceeds {high_field} ({high}): a minimum must be at most "
                                  "its maximum; lower this or raise {high_field}",
                                  {"high_field": high_field, "high": high})
    return value


class ZooParams(_Strict):
    seed: int = Field(7, description="Seed of the whole catalogue; same seed, same clips.")
    pairs_per_generator: int = Field(6, ge=1, description="Real/fake pairs rendered per generator.")
    generators: tuple[str, ...] | None = Field(
        None, min_length=1, description="Fake generators to publish, each once (names of vigil.zoo.generators; "
                                        "checked when the run loads its parameters); default all in the zoo.")
    width: int = Field(160, ge=32, le=256, multiple_of=2, description="Frame width (px, even, at most 256).")
    height: int = Field(120, ge=32, le=256, multiple_of=2, description="Frame height (px, even, at most 256).")
    fps: float = Field(8.0, gt=0, le=60, description="Frames per second.")
    min_duration_s: float = Field(2.0, gt=0, description="Shortest clip, seconds.")
    max_duration_s: float = Field(4.0, gt=0, description="Longest clip, seconds (at least min_duration_s).")
    page_size: int = Field(12, ge=1, description="Items per gallery page.")

    @field_validator("generators")
    @classmethod
    def _each_generator_once(cls, value):
        if value is not None:
            blank = [name for name in value if not name.strip()]
            if blank:
                raise PydanticCustomError("blank_name",
                                          "an empty generator name; list generator names, or null for all")
            twice = sorted({name for name in value if value.count(name) > 1})
            if twice:
                raise PydanticCustomError("duplicate_name", "lists {names} more than once; list each generator once",
                                          {"names": ", ".join(map(repr, twice))})
        return value

    @field_validator("max_duration_s")
    @classmethod
    def _durations(cls, value, info: ValidationInfo):
        return _not_below(value, info, "min_duration_s")


class SourceParams(_Strict):
    name: str = Field(description="Source name, recorded as provenance of every clip; unique among the sources.")
    url: str = Field(description="Start URL (gallery root): http:// or https:// with a host, or 'embedded:zoo' for "
                                 "the built-in gallery.")
    allow_private: bool = Field(False, description="Allow private/loopback addresses (only for trusted local sources).")
    max_items: int | None = Field(None, ge=1, description="Stop after this many items from the source.")
    # The source's own claims, for sites that publish none (RSS, Atom, <video> pages, directory listings):
    # used only where the page, feed or metadata document says nothing, and recorded as the source's claim
    # (CrawledItem.claimed_by), never as the site's.
    label: Literal["real", "fake"] | None = Field(
        None, description="Label of every clip from this source whose page/feed names none. 'real' implies "
                          "generator 'real' (the zoo's convention for camera footage).")
    generator: str | None = Field(
        None, description="Generator of every clip whose page/feed names none and whose path gives none "
                          "(generator_from_path); 'real' for camera footage.")
    licence: str | None = Field(None, description="Licence of every clip whose page/feed names none.")
    generator_from_path: str | None = Field(
        None, description="Regex with a named group 'generator', searched in the URL-decoded path of each "
                          "media URL; e.g. '/(?P<generator>[^/]+)/[^/]+$' takes the folder name. A folder "
                          "named 'real' gives generator and label 'real' (over this source's label: it is more "
                          "specific); ignored when label is 'real'.")

    @field_validator("generator", "licence")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise PydanticCustomError("blank_claim", "a blank claim; leave it out (null) instead")
        return value

    @field_validator("generator_from_path")
    @classmethod
    def _generator_pattern(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise PydanticCustomError("bad_regex", "the regex does not compile: {error}; "
                                      "e.g. '/(?P<generator>[^/]+)/[^/]+$' takes the folder name",
                                      {"error": str(exc)}) from None
        if "generator" not in pattern.groupindex:
            raise PydanticCustomError("no_generator_group", "the regex has no named group 'generator' (the part "
                                      "of the path that names the generator); write it as (?P<generator>...), "
                                      "e.g. '/(?P<generator>[^/]+)/[^/]+$'")
        return value

    @model_validator(mode="after")
    def _real_means_real(self) -> SourceParams:
        # the zoo records camera footage as generator 'real'; a real clip claiming a generator could not be told
        # from a fake with a missing label
        if self.label == "real" and self.generator not in (None, "real"):
            raise ValueError(f"label 'real' with generator {self.generator!r}: a real clip's generator is 'real'; "
                             "drop this source's generator or set label: fake")
        if self.label == "fake" and self.generator == "real":
            raise ValueError("label 'fake' with generator 'real': name the generator, or set label: real")
        return self

    @field_validator("name")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip():
            raise PydanticCustomError("blank_name", "a source needs a name (it is recorded with every clip it gives)")
        return value

    @field_validator("url")
    @classmethod
    def _crawlable(cls, value: str) -> str:
        problem = url_problem(value)
        if problem:
            raise PydanticCustomError("unsupported_url", "{problem}; allowed: an http:// or https:// URL with a host "
                                      "(e.g. https://example.org/gallery/), or 'embedded:zoo'", {"problem": problem})
        return value


def url_problem(url: str) -> str | None:
    """Why the crawler could not start from ``url`` (None when it can): it fetches http(s) only
    (vigil.crawl.netguard), resolves a host, and knows one embedded source."""
    if url == EMBEDDED_ZOO_URL:
        return None
    if not url.strip():
        return "an empty URL"
    if url != url.strip() or any(c.isspace() for c in url):
        return "a URL with spaces in it"
    parts = urlsplit(url)
    if not parts.scheme:
        return "a relative URL (no scheme)"
    if parts.scheme.lower() not in ("http", "https"):
        return f"the crawler does not fetch {parts.scheme}: URLs"
    try:
        parts.port
    except ValueError:
        return f"port {parts.netloc.rpartition(':')[2]!r} is not a port number"
    if not parts.hostname:
        return "a URL without a host"
    return None


_UA_CHARS = re.compile(r"^[\x20-\x7e]+$")


class CrawlParams(_Strict):
    sources: tuple[SourceParams, ...] = Field(
        (SourceParams(name="zoo-gallery", url=EMBEDDED_ZOO_URL, allow_private=True),),
        description="Where to crawl; each source's name once.")
    concurrency: int = Field(8, ge=1, le=256, description="Downloads in flight overall.")
    per_domain_concurrency: int = Field(4, ge=1, description="Requests in flight per domain.")
    per_domain_rps: float = Field(50.0, gt=0, description="Requests per second per domain.")
    max_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="Largest download accepted, bytes.")
    connect_timeout_s: float = Field(5.0, gt=0, description="TCP/TLS connect timeout, seconds.")
    read_timeout_s: float = Field(10.0, gt=0, description="Longest silence while reading a body, seconds (a stalled server).")
    total_timeout_s: float = Field(120.0, gt=0, description="Longest whole download, seconds.")
    retries: int = Field(4, ge=0, description="Retries on 429/5xx/network errors.")
    backoff_s: float = Field(0.5, ge=0, description="First retry delay; doubles each time.")
    max_backoff_s: float = Field(30.0, ge=0, description="Cap on one retry delay, Retry-After included.")
    max_pages: int = Field(100, ge=1, description="Most listing pages followed per source (rel=next pages, "
                                                  "sub-folders and sitemaps all count).")
    max_depth: int = Field(3, ge=0, description="Folder levels followed below a source's start URL: sub-folders "
                                                "of a directory listing, child sitemaps of a sitemap index. 0 reads "
                                                "the start page (and its rel=next pages) only.")
    near_duplicate_distance: float = Field(6.0, ge=0, description="Mean per-frame Hamming distance under which two clips are near-duplicates.")
    user_agent: str = Field("VigilBot/0.1 (+https://github.com/vigil/vigil)",
                            description="User-Agent, also matched against robots.txt: printable ASCII, not blank.")
    schedule_cron: str = Field("0 */6 * * *", description="Cron schedule of the production crawl deployment: five "
                                                           "fields (minute hour day-of-month month day-of-week) or "
                                                           "@hourly, @daily, @weekly, @monthly, @yearly.")

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, value: tuple[SourceParams, ...]):
        # a clip's provenance and the crawl's ledger event name the source: two of one name could not be told apart
        names = [s.name for s in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise PydanticCustomError("duplicate_name", "source name(s) {names} used more than once; give each "
                                      "source its own name", {"names": ", ".join(map(repr, twice))})
        return value

    @field_validator("user_agent")
    @classmethod
    def _sendable_user_agent(cls, value: str) -> str:
        if not value.strip() or not _UA_CHARS.match(value):
            raise PydanticCustomError("bad_user_agent", "a User-Agent must be printable ASCII and not blank (it is "
                                      "sent as an HTTP header and matched against robots.txt)")
        return value

    @field_validator("schedule_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        problem = cron_problem(value)
        if problem:
            raise PydanticCustomError("bad_cron", "{problem}; allowed: five fields 'minute hour day-of-month month "
                                      "day-of-week' (e.g. '0 */6 * * *') or @hourly, @daily, @weekly, @monthly, "
                                      "@yearly", {"problem": problem})
        return value


CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
_WEEKDAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
_CRON_FIELDS = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day-of-month", 1, 31, {}),
                ("month", 1, 12, _MONTHS), ("day-of-week", 0, 7, _WEEKDAYS))


def cron_problem(expression: str) -> str | None:
    """What is wrong with a cron schedule (None when nothing is). Prefect validates schedules with its
    vendored croniter, but importing prefect here would read its settings before configure_prefect sets
    them; so this is the classic five-field grammar, a subset of what croniter accepts (no seconds field,
    L, W, # or ?): whatever passes here, Prefect takes."""
    text = expression.strip()
    if text.lower() in CRON_MACROS:
        return None
    fields = text.split()
    if len(fields) != 5:
        return f"{len(fields)} field(s)"
    for field, (name, low, high, names) in zip(fields, _CRON_FIELDS):
        for part in field.split(","):
            problem = _cron_part_problem(part.lower(), low, high, names)
            if problem:
                return f"{name} {field!r}: {problem}"
    return None


def _cron_part_problem(part: str, low: int, high: int, names: dict[str, int]) -> str | None:
    span, slash, step = part.partition("/")
    if slash and not (step.isdigit() and int(step) >= 1):
        return f"step {step!r} is not a whole number of at least 1"
    if span == "*":
        return None
    start, dash, end = span.partition("-")
    bounds = [start, end] if dash else [start]
    values = []
    for bound in bounds:
        value = names.get(bound, int(bound) if bound.isdigit() else None)
        if value is None:
            return f"{bound!r} is not a number{' or a name' if names else ''}"
        if not low <= value <= high:
            return f"{value} is outside {low}-{high}"
        values.append(value)
    if len(values) == 2 and values[0] > values[1]:
        return f"range {span!r} runs backwards"
    return None


class IngestParams(_Strict):
    frames: int = Field(16, ge=1, le=256, description="Frames sampled per clip (Skyra layout 1.png…N.png).")
    max_side: int = Field(224, ge=16, description="Longest side of a sampled frame, px.")
    max_pixels: int = Field(224 * 224, ge=256, description="Most pixels in a sampled frame.")
    max_duration_s: float = Field(600.0, gt=0, description="Longer clips are quarantined.")
    prefer_keyframes: bool = Field(
        False, description="Take a segment's keyframe instead of its centre frame when it has one: much faster "
                           "on short-GOP clips, but keyframes are sharper than B-frames, so frame quality would "
                           "follow each source's encoder settings (a possible tell).")
    train_fraction: float = Field(0.8, ge=0, le=1, description="Share of groups in the train split.")
    val_fraction: float = Field(0.1, ge=0, le=1, description="Share of groups in the val split; test gets the rest.")
    split_salt: str = Field("vigil-splits-v1", description="Salt of the group hash; changing it reshuffles every split.")
    workers: int = Field(2, ge=1, description="Parallel probe/sample workers.")

    @model_validator(mode="after")
    def _fractions(self):
        if self.train_fraction + self.val_fraction > 1:
            raise ValueError("train_fraction + val_fraction must be at most 1")
        return self


class ValidationParams(_Strict):
    min_rows: int = Field(2, ge=1, description="A batch with fewer rows fails.")
    min_fake_fraction: float = Field(0.2, ge=0, le=1, description="Class balance: lowest share of fakes among labelled rows.")
    max_fake_fraction: float = Field(0.8, ge=0, le=1, description="Class balance: highest share of fakes (at least "
                                                                  "min_fake_fraction).")
    min_side: int = Field(16, ge=1, description="Smallest allowed source width/height, px.")
    max_side: int = Field(8192, ge=1, description="Largest allowed source width/height, px (at least min_side).")
    min_fps: float = Field(1.0, gt=0, description="Lowest allowed frame rate.")
    max_fps: float = Field(240.0, gt=0, description="Highest allowed frame rate (at least min_fps).")
    max_duration_s: float = Field(600.0, gt=0, description="Longest allowed clip, seconds.")
    allowed_generators: tuple[str, ...] | None = Field(
        None, description="Generator names a batch may claim; default: 'real', 'unknown' and the zoo's generators. "
                          "A generator a source names (crawl.sources[*].generator) is allowed too; one derived "
                          "from URL paths (generator_from_path) must be listed here.")

    @field_validator("max_fake_fraction")
    @classmethod
    def _fake_fractions(cls, value, info: ValidationInfo):
        return _not_below(value, info, "min_fake_fraction")

    @field_validator("max_side")
    @classmethod
    def _sides(cls, value, info: ValidationInfo):
        return _not_below(value, info, "min_side")

    @field_validator("max_fps")
    @classmethod
    def _fps(cls, value, info: ValidationInfo):
        return _not_below(value, info, "min_fps")


class AnnotateParams(_Strict):
    source: Literal["auto", "synthetic", "teacher"] = Field(
        "auto", description="Who explains the clips: 'synthetic' (from the zoo's ground truth), 'teacher' (an "
                            "OpenAI-compatible model at VIGIL_TEACHER_URL), or 'auto' (teacher when configured).")
    prompt_version: str | None = Field(
        None, description="Version recorded with each annotation and compared for staleness; default: the "
                          "grammar module's PROMPT_VERSION. Bump it to have `vigil annotate --reannotate` redo everything.")
    max_concurrency: int = Field(4, ge=1, description="Teacher requests in flight.")
    requests_per_minute: float = Field(120.0, gt=0, description="Teacher rate limit.")
    timeout_s: float = Field(120.0, gt=0, description="One teacher request, seconds.")
    max_retries: int = Field(3, ge=0, description="Retries on 429/5xx/timeouts, honouring Retry-After.")
    max_repairs: int = Field(2, ge=0, description="Times a reply that breaks the grammar or contradicts the label is sent back with its violations.")
    max_frames: int = Field(8, ge=1, description="Frames sent to the teacher per clip.")
    temperature: float = Field(0.2, ge=0, description="Teacher sampling temperature.")
    max_tokens: int = Field(512, ge=16, description="Longest teacher reply, tokens.")
    cost_per_1k_prompt_tokens: float = Field(0.0, ge=0, description="Price, for the cost record (USD).")
    cost_per_1k_completion_tokens: float = Field(0.0, ge=0, description="Price, for the cost record (USD).")
    min_coverage: float = Field(0.9, ge=0, le=1, description="Share of samples that must have an accepted annotation.")
    min_compliance_rate: float = Field(0.95, ge=0, le=1, description="Share of chosen annotations that follow the grammar.")
    min_evidence_per_fake: float = Field(1.0, ge=0, description="Mean typed evidence per fake clip.")
    min_label_agreement: float = Field(0.95, ge=0, le=1, description="Share of annotations whose label agrees with the dataset's.")


class TinySizes(_Strict):
    """Sizes of the locally built tiny model (see vigil.models.tiny.TinyModelConfig for each field)."""

    text_hidden_size: int = Field(256, ge=64, description="Hidden size of the language model.")
    text_layers: int = Field(4, ge=1, description="Decoder layers of the language model.")
    text_heads: int = Field(4, ge=1, description="Attention heads of the language model.")
    text_kv_heads: int = Field(2, ge=1, description="Key/value heads (grouped-query attention).")
    text_intermediate_size: int = Field(512, ge=16, description="MLP width of the language model.")
    vision_depth: int = Field(4, ge=1, description="Transformer blocks of the vision tower.")
    vision_hidden_size: int = Field(128, ge=16, description="Hidden size of the vision tower.")
    vision_heads: int = Field(2, ge=1, description="Attention heads of the vision tower.")
    vision_intermediate_size: int = Field(256, ge=16, description="MLP width of the vision tower.")
    seed: int = Field(0, description="Seed of the random weights.")


class LoraParams(_Strict):
    r: int = Field(16, ge=1, description="LoRA rank.")
    alpha: int = Field(32, ge=1, description="LoRA scaling numerator (alpha / r scales the update).")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: tuple[str, ...] = Field(
        ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
        description="Language-model module names to adapt. vLLM applies Qwen2.5-VL LoRA to the language model "
                    "only, so vision modules are not listed.")


class ModelProfile(_Strict):
    base: str | None = Field(None, description="Hugging Face id or local folder of the base model; null = build the "
                                                "tiny model locally from `tiny` (no download).")
    tiny: TinySizes = Field(TinySizes(), description="Sizes of the locally built model (only when base is null).")
    finetune: Literal["full", "lora"] = Field("full", description="Full fine-tuning or LoRA adapters on the language model.")
    lora: LoraParams = LoraParams()
    freeze_vision: bool = Field(True, description="Keep the vision tower frozen in SFT and GRPO (Skyra's SFT does).")
    max_frames: int = Field(8, ge=2, le=64, description="Most frames per clip given to the model (evenly spaced).")
    max_pixels: int = Field(56 * 56, ge=28 * 28, description="Most pixels per frame after resizing (multiples of 28 per side).")
    min_pixels: int = Field(56 * 56, ge=28 * 28,
                            description="Fewest pixels per frame after resizing (at most max_pixels).")
    frame_pairs: bool = Field(True, description="Each image is two consecutive frames (t, t+1), so the vision tower "
                                                "sees every change between frames (vigil.models.frame_pairs); false = "
                                                "one frame per image, Skyra's layout.")
    system_prompt: Literal["full", "compact"] = Field(
        "full", description="The grammar's system prompt: `full` (instructions, artifact names, an example; "
                            "~760 tokens) or `compact` (the format in two sentences), for a model trained from "
                            "scratch, which cannot read instructions and behind them learns far slower to look "
                            "at the frames. Serving must send the same one.")
    sft_target: Literal["explanation", "evidence"] = Field(
        "explanation", description="What SFT teaches: the annotation's whole explanation, or `evidence`, the same "
                                   "output with the prose dropped (vigil.core.grammar.condense): only the grounded "
                                   "evidence tags and the answer, for a model too small to learn prose.")
    decision_weight: float = Field(
        1.0, ge=1, le=1000, description="With the evidence target: SFT loss weight of the completion's first "
                                        "<think> token, which alone tells Fake (an artifact's <type>) from Real (a "
                                        "normal segment's <t>); 1 = every completion token counts the same.")
    dtype: Literal["float32", "bfloat16"] = Field("float32", description="Training and inference dtype.")
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory (large models).")
    vision_pretrain: bool = Field(True, description="Run the pretrain stage (vision tower on the zoo's artifact masks) "
                                                    "before SFT. For randomly initialised towers; a pretrained tower skips it.")

    @field_validator("min_pixels")
    @classmethod
    def _pixels(cls, value, info: ValidationInfo):
        return _not_above(value, info, "max_pixels")

    @model_validator(mode="after")
    def _decision_weight_needs_evidence(self):
        if self.decision_weight != 1 and self.sft_target != "evidence":
            raise ValueError("decision_weight needs sft_target: evidence (an explanation's first token is prose, "
                             "not the decision); set it to 1 or change the target")
        return self


class ModelParams(_Strict):
    profile: str = Field("tiny", description="Which entry of `profiles` trains.")
    profiles: dict[str, ModelProfile] = Field({"tiny": ModelProfile()}, description="Named model profiles.")

    @model_validator(mode="after")
    def _known_profile(self):
        if self.profile not in self.profiles:
            raise ValueError(f"profile {self.profile!r} is not one of the profiles: {', '.join(self.profiles)}")
        return self

    @property
    def active(self) -> ModelProfile:
        return self.profiles[self.profile]


class PretrainParams(_Strict):
    zoo_seeds: tuple[int, ...] = Field((101, 102), description="Zoo seeds rendered for the stage (never the gallery's "
                                                               "or the held-out seed).")
    pairs_per_generator: tuple[int, ...] = Field((400, 600), description="Real/fake pairs per generator, one per seed.")
    render_workers: int = Field(2, ge=1, description="Processes rendering clips (a one-off, cached by its params).")
    max_steps: int = Field(4200, ge=1, description="Optimizer steps (the stage's length).")
    batch_pairs: int = Field(8, ge=1, description="Real/fake pairs per batch (both members of a pair in one batch).")
    lr: float = Field(3e-4, gt=0, description="AdamW learning rate (1e-3 learned less in the research runs).")
    decay_fraction: float = Field(0.3, ge=0, le=1, description="Share of the last steps over which the learning "
                                                               "rate falls linearly to zero (0 = constant).")
    grad_clip: float = Field(1.0, gt=0, description="Gradient-norm clip.")
    pos_weight: float = Field(3.0, gt=0, description="Weight of artifact tokens in the token loss (they are rare).")
    fast_tower: bool = Field(True, description="Train with the vision attention batched over equal windows and the "
                                               "patch embedding as a matrix product (same model, ~1.4x faster steps).")
    token_threshold: float = Field(0.02, ge=0, lt=1, description="A token is an artifact token when more than this "
                                                                 "share of its pixels is in a mask.")
    flip: bool = Field(True, description="Random horizontal flips.")
    temporal_difference_init: bool = Field(True, description="Initialise the patch embedding with temporal-difference "
                                                             "filters (a designed start, no download).")
    checkpoint_every: int = Field(200, ge=1, description="Steps between checkpoints (resume point).")
    log_every: int = Field(50, ge=1, description="Steps between metric rows.")


class SftParams(_Strict):
    max_steps: int = Field(150, ge=1, description="Optimizer steps.")
    batch_size: int = Field(16, ge=1, description="Clips per step.")
    lr: float = Field(1e-3, gt=0, description="Learning rate (AdamW).")
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="Share of steps with a linear warm-up.")
    checkpoint_every: int = Field(50, ge=1, description="Steps between checkpoints (resume point).")
    log_every: int = Field(10, ge=1, description="Steps between metric rows.")
    label_only: Literal["skip", "verdict"] = Field(
        "skip", description="Label-only samples (a verdict without grounded evidence, e.g. crawled fakes no teacher "
                            "or person has grounded): 'skip' leaves them out of SFT, 'verdict' trains on their "
                            "'no artifact was localised' target. GRPO always uses them (its answer reward needs "
                            "only the label).")


class GrpoParams(_Strict):
    max_steps: int = Field(24, ge=1, description="Optimizer steps.")
    batch_size: int = Field(8, ge=1, description="Completions per step (prompts x num_generations).")
    num_generations: int = Field(4, ge=2, description="Completions sampled per prompt (the group).")
    max_completion_length: int = Field(96, ge=8, description="Longest sampled completion, tokens.")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature of the group's completions.")
    lr: float = Field(5e-5, gt=0, description="Learning rate (small: GRPO refines the SFT model; 2e-4 broke the "
                                              "tiny model's format).")
    beta: float = Field(0.04, ge=0, description="KL penalty toward the SFT model (0 = none, no reference model).")
    rewards: dict[str, float] = Field({"skyra": 1.0, "grounding": 0.5},
                                      description="Reward functions (vigil.train.rewards) and their weights.")
    checkpoint_every: int = Field(8, ge=1, description="Steps between checkpoints (resume point).")
    log_every: int = Field(2, ge=1, description="Steps between metric rows.")


class HeldoutParams(_Strict):
    zoo_seed: int = Field(303, description="Zoo seed of the held-out clips (used by no training stage).")
    pairs_per_generator: int = Field(40, ge=1, description="Held-out real/fake pairs per generator.")
    batch_size: int = Field(32, ge=1, description="Clips per generation batch.")
    max_new_tokens: int = Field(160, ge=8, description="Longest generated answer, tokens.")


class TrainParams(_Strict):
    dataset: str = Field("latest", description="Labelled dataset version to train on (ds-NNNN), or 'latest'.")
    seed: int = Field(0, description="Seed of every stage (data order, initialisation, sampling).")
    threads: int | None = Field(None, ge=1, description=(
        "CPU threads for torch in every training stage (and the processes `dvc repro` starts); null = "
        "OMP_NUM_THREADS when set, else min(4, usable cores). On a machine shared with other jobs, set this "
        "job's share of the cores (1 on a 2-core machine that also runs tests); see vigil.train.threads."))
    shuffle_labels: bool = Field(False, description="Negative control: SFT and GRPO see each clip with a random "
                                                    "other clip's label and explanation (the gate must refuse the result).")
    pretrain: PretrainParams = PretrainParams()
    sft: SftParams = SftParams()
    grpo: GrpoParams = GrpoParams()
    heldout: HeldoutParams = HeldoutParams()

    @model_validator(mode="after")
    def _seeds(self):
        if len(self.pretrain.zoo_seeds) != len(self.pretrain.pairs_per_generator):
            raise ValueError("pretrain.zoo_seeds and pretrain.pairs_per_generator need one entry each per seed")
        if self.heldout.zoo_seed in self.pretrain.zoo_seeds:
            raise ValueError(f"heldout.zoo_seed {self.heldout.zoo_seed} is also a pretrain seed: it would not be held out")
        if self.grpo.batch_size % self.grpo.num_generations:
            raise ValueError(f"grpo.batch_size ({self.grpo.batch_size}) must be a multiple of "
                             f"grpo.num_generations ({self.grpo.num_generations})")
        return self


GATE_METRICS = ("paired_balanced_accuracy", "fake_recall", "accuracy", "fpr_real", "format_compliance")


class EvaluateParams(_Strict):
    recent_split: Literal["train", "val", "test"] = Field(
        "test", description="The fresh slice the gate adds to the fixed set: this split of the newest labelled version.")
    batch_size: int = Field(32, ge=1, description="Clips per generation batch (offline evaluation).")
    max_new_tokens: int = Field(384, ge=8, description="Longest generated answer, tokens.")
    report_examples: int = Field(6, ge=0, description="Example explanations drawn on frames in the gate report.")


class GateRules(_Strict):
    min: dict[str, float] = Field({}, description=f"Metric -> minimum; the candidate's lower confidence bound must "
                                                  f"reach it. Metrics: {', '.join(GATE_METRICS)}.")
    max: dict[str, float] = Field({}, description="Metric -> maximum; the candidate's upper confidence bound must "
                                                  "stay at or under it (e.g. fpr_real).")
    max_generator_regression: float | None = Field(
        None, ge=0, description="Against a champion: per generator, the lower bound of (candidate - champion) paired "
                                "balanced accuracy must be at least minus this. null = rule off.")
    min_improvement: float | None = Field(
        None, description="Against a champion: the lower bound of (candidate - champion) on the primary metric must "
                          "exceed this (0 = better beyond noise). null = rule off.")

    @model_validator(mode="after")
    def _known_metrics(self):
        unknown = sorted((set(self.min) | set(self.max)) - set(GATE_METRICS))
        if unknown:
            raise ValueError(f"unknown gate metric(s) {', '.join(unknown)}; allowed: {', '.join(GATE_METRICS)}")
        return self

    @field_validator("max")
    @classmethod
    def _reachable(cls, value: dict[str, float], info: ValidationInfo):
        # a metric whose minimum is above its maximum could never pass: every candidate would be refused
        low = info.data.get("min") or {}
        clash = sorted(m for m in value if m in low and low[m] > value[m])
        if clash:
            raise PydanticCustomError("min_above_max", "{clash}: a minimum above its maximum, which no candidate can "
                                      "pass; lower the min or raise the max",
                                      {"clash": ", ".join(f"{m} min {low[m]} > max {value[m]}" for m in clash)})
        return value


class GateParams(_Strict):
    primary_metric: Literal["paired_balanced_accuracy", "fake_recall", "accuracy", "format_compliance"] = Field(
        "paired_balanced_accuracy", description="What 'better' means for min_improvement.")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="Two-sided level of the bootstrap intervals.")
    bootstrap_samples: int = Field(1000, ge=100, description="Bootstrap resamples of the evaluation pairs.")
    seed: int = Field(0, description="Seed of the bootstrap.")
    fixed: GateRules = Field(GateRules(min={"paired_balanced_accuracy": 0.6, "format_compliance": 0.6},
                                       max={"fpr_real": 0.4}, max_generator_regression=0.1, min_improvement=0.0),
                             description="Rules on the fixed evaluation set (train.heldout's zoo clips).")
    recent: GateRules = Field(GateRules(min={"paired_balanced_accuracy": 0.5}, max_generator_regression=0.25),
                              description="Rules on the recent slice (small: looser bounds).")


class Params(_Strict):
    zoo: ZooParams = ZooParams()
    crawl: CrawlParams = CrawlParams()
    ingest: IngestParams = IngestParams()
    validation: ValidationParams = ValidationParams()
    annotate: AnnotateParams = AnnotateParams()
    model: ModelParams = ModelParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    gate: GateParams = GateParams()

    @model_validator(mode="after")
    def _heldout_is_held_out(self):
        if self.train.heldout.zoo_seed == self.zoo.seed:
            raise ValueError(f"train.heldout.zoo_seed {self.zoo.seed} is the gallery's zoo.seed: the held-out clips "
                             "would be training clips")
        return self


def parse_params(doc: object, source: str = "params.yaml") -> Params:
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: expected a mapping of sections ({', '.join(Params.model_fields)}), got {type(doc).__name__}")
    try:
        # strict mode refuses lists for tuples; YAML only has lists, so validate from JSON-like data
        return Params.model_validate_json(_to_json(doc))
    except ValidationError as exc:
        message = format_validation_error(exc, source)
        allowed = _allowed_keys_hint(exc)
        raise ConfigError(message + allowed) from exc


def _to_json(doc: object) -> str:
    import json

    return json.dumps(doc, default=str)


def _allowed_keys_hint(exc: ValidationError) -> str:
    hints = []
    for err in exc.errors():
        if err["type"] == "extra_forbidden":
            model = Params
            for part in err["loc"][:-1]:
                field = model.model_fields.get(str(part)) if isinstance(part, str) else None
                annotation = field.annotation if field else None
                if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                    model = annotation
                else:
                    model = SourceParams if "sources" in map(str, err["loc"]) else model
            hints.append(f"  allowed keys at {'.'.join(map(str, err['loc'][:-1])) or 'top level'}: {', '.join(model.model_fields)}")
    return ("\n" + "\n".join(hints)) if hints else ""


def parse_params_yaml(text: str, source: str = "params.yaml") -> Params:
    """Parameters from YAML text; ``source`` names it in errors."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    return parse_params(doc, source)


def load_params(path: str | Path | None = None, *, origin: str | None = None) -> Params:
    """Parameters from ``path``, which must exist: a file someone named (argument, ``--params``,
    VIGIL_PARAMS_FILE) that is missing is a typo, and running on the defaults instead would train a
    different model than the one asked for. ``origin`` says where the name came from, for the error.

    ``None`` is the implicit default ``./params.yaml``; it may be absent (a temp folder, a fresh
    install), and then the built-in defaults apply, said once at INFO.
    """
    if path is None:
        if not DEFAULT_PARAMS_FILE.is_file():
            log.info("no %s in %s: using the built-in default parameters", DEFAULT_PARAMS_FILE, Path.cwd())
            return Params()
        path = DEFAULT_PARAMS_FILE
    path = Path(path)
    named = f" (from {origin})" if origin else ""
    if not path.is_file():
        what = "is not a file" if path.exists() else "not found"
        raise ConfigError(f"parameters file {path}{named} {what}: fix the path, or name no file to use ./params.yaml "
                          "(the built-in defaults where there is none)")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"parameters file {path}{named} cannot be read: {exc}") from exc
    return parse_params_yaml(text, str(path))


def load_configured_params(settings: Settings, params_file: str | Path | None = None) -> Params:
    """The parameters an entry point runs with: ``params_file`` (``--params``) when given, else
    VIGIL_PARAMS_FILE when set (either must exist), else ``./params.yaml`` or the built-in defaults."""
    if params_file:  # None or "" (a flow run's default): not given
        return load_params(params_file, origin="--params")
    if settings.params_file_explicit:
        return load_params(settings.params_file, origin=f"{ENV_PREFIX}PARAMS_FILE")
    return load_params(None)


def params_to_yaml(params: Params) -> str:
    """Complete, canonical YAML: sections and fields in the schema's order, the keys of free-form
    mappings (model profiles, rewards, gate bounds) sorted, so equal parameters give equal text."""
    return yaml.safe_dump(_canonical(params, params.model_dump(mode="json")), sort_keys=False)


def _canonical(value: object, dumped: object) -> object:
    if isinstance(value, BaseModel) and isinstance(dumped, dict):
        return {name: _canonical(getattr(value, name, None), item) for name, item in dumped.items()}
    if isinstance(dumped, dict):
        source = value if isinstance(value, dict) else {}
        return {key: _canonical(source.get(key), dumped[key]) for key in sorted(dumped)}
    if isinstance(dumped, list) and isinstance(value, (list, tuple)):
        return [_canonical(v, d) for v, d in zip(value, dumped)]
    return dumped


def params_snapshot(params: Params) -> tuple[str, str]:
    """The parameters as complete YAML (every default written out) and the sha256 of that text: the
    identity a run's steps and ledger events share, whatever the file's comments and key order."""
    import hashlib

    text = params_to_yaml(params)
    return text, hashlib.sha256(text.encode()).hexdigest()
