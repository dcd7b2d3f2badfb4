"""The typed schema of ``params.yaml``: one pydantic model per section, the only place for defaults.

``load_config()`` reads and validates the whole file up front, so a wrong value stops a stage before
any work with one line naming the key (``params.yaml: train.hidden must be an integer >= 1, got
'big'``; a misspelt key gets the nearest known name). Every model forbids unknown keys.

``params.yaml`` still lists every key with the value it has here (DVC tracks, diffs and ``-S``-sets
only the keys written in params.yaml); ``tests/config`` checks that the committed params.yaml equals
these defaults, so the two cannot drift.

Adding a param: one field (type, range, default) on its section's class below, the same key and
value with a short comment in params.yaml.
"""

from __future__ import annotations

import argparse
import copy
import difflib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from annotated_types import Ge, Gt, Le, Lt, MinLen
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.fields import FieldInfo

from babelfuse import paths
from babelfuse.errors import BabelfuseError
from babelfuse.features.coverage import canonical_language, covered_languages
from babelfuse.features.registry import ENCODERS, available  # light: imports no encoder

# One name per fusion method; babelfuse.fusion.FUSIONS implements each (a test checks they match).
FusionName = Literal["concat", "weighted", "attention", "gated", "late", "tensor", "lowrank"]
PrunerName = Literal["median", "hyperband", "none"]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveInt = Annotated[int, Field(ge=1)]


class Section(BaseModel):
    """Base of every section: unknown keys are errors, values are not coerced (``'64'`` is no int)."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_default=True, frozen=True)


# --------------------------------------------------------------------------------------------- data
class SplitSizes(Section):
    train: PositiveInt
    val: PositiveInt
    test_per_lang: PositiveInt
    gate_per_lang: PositiveInt
    fewshot_per_lang: PositiveInt


class ContentSplit(Section):
    """Shares of every template list given to each disjoint content pool (data/plan.py)."""

    trainval: Annotated[float, Field(gt=0.0)] = 0.6
    gate: Annotated[float, Field(gt=0.0)] = 0.15
    test: Annotated[float, Field(gt=0.0)] = 0.15
    fewshot: Annotated[float, Field(gt=0.0)] = 0.1


class Interactions(Section):
    """Generator interactions (data/latent.py): share of flat-voiced (ironic) and degraded-voice posts."""

    irony: Share = 0.3
    reliability: Share = 0.2


class Informativeness(Section):
    text: Share = 0.45
    image: Share = 0.6
    audio: Share = 0.6


def _default_sizes() -> dict[str, SplitSizes]:
    return {
        "default": SplitSizes(train=600, val=150, test_per_lang=120, gate_per_lang=90, fewshot_per_lang=75),
        "tiny": SplitSizes(train=48, val=24, test_per_lang=12, gate_per_lang=12, fewshot_per_lang=15),
    }


class DataConfig(Section):
    source: Literal["generated", "manifest"] = "generated"
    manifest_path: str = "examples/byod/manifest.csv"
    languages: Annotated[list[str], MinLen(1)] = Field(
        default_factory=lambda: ["en", "de", "fr", "es", "ru", "ar", "zh", "ja"]
    )
    source_langs: Annotated[list[str], MinLen(1)] = Field(default_factory=lambda: ["en"])
    size: str = "default"
    sizes: dict[str, SplitSizes] = Field(default_factory=_default_sizes)
    informativeness: Informativeness = Field(default_factory=Informativeness)
    content_split: ContentSplit = Field(default_factory=ContentSplit)
    interactions: Interactions = Field(default_factory=Interactions)
    image_size: Annotated[int, Field(ge=8)] = 96
    audio_sample_rate: PositiveInt = 16000
    audio_noise_db: Annotated[float, Field(le=0.0)] = -30

    @model_validator(mode="after")
    def _consistent(self) -> DataConfig:
        if self.size not in self.sizes:
            raise ValueError(
                f"size must be one of the keys of data.sizes ({', '.join(self.sizes)}), got {self.size!r}"
            )
        extra = [lang for lang in self.source_langs if lang not in self.languages]
        if extra:
            raise ValueError(f"source_langs must be a subset of data.languages, got {extra} outside it")
        return self


# ----------------------------------------------------------------------------------------- validate
class ValidateConfig(Section):
    on_failure: Literal["fail", "quarantine"] = "fail"
    text_max_chars: PositiveInt = 500
    image_max_pixels: PositiveInt = 4_000_000
    image_max_side: PositiveInt = 4096
    audio_sample_rate: PositiveInt = 16000
    audio_min_seconds: Annotated[float, Field(ge=0.0)] = 0.2
    audio_max_seconds: Annotated[float, Field(gt=0.0)] = 30.0
    audio_min_rms: Annotated[float, Field(ge=0.0)] = 0.001
    class_balance_max_ratio: Annotated[float, Field(ge=1.0)] = 3.0

    @model_validator(mode="after")
    def _ordered(self) -> ValidateConfig:
        if not self.audio_min_seconds < self.audio_max_seconds:
            raise ValueError(
                f"audio_min_seconds must be below audio_max_seconds ({self.audio_max_seconds:g}), "
                f"got {self.audio_min_seconds:g}"
            )
        return self


# ----------------------------------------------------------------------------------------- features
def _check_encoder(modality: str, spec: str) -> str:
    prefix, sep, argument = spec.partition(":")
    if (modality, spec) in ENCODERS and not spec.endswith(":"):
        return spec
    if sep and argument and (modality, prefix + ":") in ENCODERS:
        return spec
    raise ValueError(f"must be one of {', '.join(available(modality))}, got {spec!r}")


class TextFeatures(Section):
    encoder: str = "use-multilingual"
    max_length: PositiveInt = 128
    batch_size: PositiveInt = 64
    # The languages the encoder covers (served and validated): null = the encoder's own list
    # (use-multilingual: its 16; hf: none, so any, with a warning), a list of codes, or "any".
    languages: Annotated[list[str], MinLen(1)] | Literal["any"] | None = None

    @field_validator("encoder")
    @classmethod
    def _encoder(cls, spec: str) -> str:
        return _check_encoder("text", spec)

    @model_validator(mode="after")
    def _languages(self) -> TextFeatures:
        if not isinstance(self.languages, list):
            return self
        bad = [c for c in self.languages if canonical_language(c, None) is None]
        if bad:
            raise ValueError(f"languages: {bad[0]!r} is not a language code (e.g. pt, pt-br, zh-tw)")
        own = covered_languages(self.encoder, None) if self.encoder == "use-multilingual" else None
        outside = [c for c in self.languages if own is not None and canonical_language(c, own) not in own]
        if outside:
            raise ValueError(f"languages: {self.encoder} does not cover {outside}; it covers {list(own)}")
        return self


class ImageFeatures(Section):
    encoder: str = "classic"
    size: Annotated[int, Field(ge=8)] = 96
    weights: str | None = None
    batch_size: PositiveInt = 64
    max_bytes: PositiveInt = 50_000_000

    @field_validator("encoder")
    @classmethod
    def _encoder(cls, spec: str) -> str:
        return _check_encoder("image", spec)


class AudioFeatures(Section):
    encoder: str = "prosody"
    sample_rate: PositiveInt = 16000
    n_mels: PositiveInt = 40
    n_mfcc: PositiveInt = 20
    batch_size: PositiveInt = 64
    max_bytes: PositiveInt = 50_000_000

    @field_validator("encoder")
    @classmethod
    def _encoder(cls, spec: str) -> str:
        return _check_encoder("audio", spec)


class RayFeatures(Section):
    """``features.engine: ray`` (features/ray_engine.py): where the cluster is and how big each actor is."""

    address: str = Field("local", min_length=1)  # local: a cluster sized to this machine, started per stage
    num_actors: PositiveInt | None = None  # null: the cluster's CPUs / num_cpus
    num_cpus: Annotated[float, Field(gt=0.0)] = 1.0
    num_gpus: Annotated[float, Field(ge=0.0)] = 0.0


class FeaturesConfig(Section):
    batch_size: PositiveInt = 64
    engine: Literal["local", "ray"] = "local"
    ray: RayFeatures = Field(default_factory=RayFeatures)
    text: TextFeatures = Field(default_factory=TextFeatures)
    image: ImageFeatures = Field(default_factory=ImageFeatures)
    audio: AudioFeatures = Field(default_factory=AudioFeatures)


# --------------------------------------------------------------------------------------------- fuse
class FuseConfig(Section):
    standardize: bool = True


# -------------------------------------------------------------------------------------------- train
class TrainConfig(Section):
    fusion: FusionName = "attention"
    hidden: PositiveInt = 64
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.2
    modality_dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.2
    learning_rate: Annotated[float, Field(gt=0.0)] = 0.002
    batch_size: PositiveInt = 32
    epochs: PositiveInt = 60
    patience: PositiveInt = 8
    lowrank_rank: PositiveInt = 4
    tensor_dim: PositiveInt = 8
    attention_heads: PositiveInt = 4
    use_best_params: bool = True
    baselines: bool = True


# --------------------------------------------------------------------------------------------- tune
Scalar = bool | int | float | str


class Range(Section):
    """``{low, high, log?}``: a float range, or an int range when both bounds are ints."""

    low: int | float
    high: int | float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low < self.high:
            raise ValueError(f"low must be below high, got low={self.low}, high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"low must be > 0 in a log range, got {self.low}")
        return self


def _dimension_kind(value: Any) -> str | None:
    if isinstance(value, list):
        return "choices"
    return "range" if isinstance(value, dict | Range) else None


Dimension = (
    Annotated[
        Annotated[list[Scalar], MinLen(1), Tag("choices")] | Annotated[Range, Tag("range")],
        Discriminator(_dimension_kind),
    ]
    | None
)
SPACE_HELP = "a non-empty list of choices or {low, high, log}"


class SpaceConfig(Section):
    """``tune.space``: the train keys a trial searches over (a key left out keeps its train value)."""

    fusion: Dimension = Field(None, description=SPACE_HELP)
    hidden: Dimension = Field(None, description=SPACE_HELP)
    dropout: Dimension = Field(None, description=SPACE_HELP)
    modality_dropout: Dimension = Field(None, description=SPACE_HELP)
    learning_rate: Dimension = Field(None, description=SPACE_HELP)
    batch_size: Dimension = Field(None, description=SPACE_HELP)
    patience: Dimension = Field(None, description=SPACE_HELP)
    lowrank_rank: Dimension = Field(None, description=SPACE_HELP)
    tensor_dim: Dimension = Field(None, description=SPACE_HELP)
    attention_heads: Dimension = Field(None, description=SPACE_HELP)

    @model_serializer(mode="wrap")
    def _searched_only(self, handler: Any) -> dict[str, Any]:
        """Dump only the searched keys (what ``tuning.space.parse_space`` reads)."""
        return {k: v for k, v in handler(self).items() if v is not None}

    @model_validator(mode="after")
    def _valid_train_values(self) -> SpaceConfig:
        """Every choice and range bound must itself be a valid value of that train key."""
        for name in type(self).model_fields:
            dim = getattr(self, name)
            values = dim if isinstance(dim, list) else [] if dim is None else [dim.low, dim.high]
            for value in values:
                try:
                    TrainConfig.model_validate({name: value})
                except ValidationError:
                    expected = describe(TrainConfig.model_fields[name])
                    raise ValueError(
                        f"{name} values must each be {expected} (as train.{name}), got {value!r}"
                    ) from None
        if not any(getattr(self, name) is not None for name in type(self).model_fields):
            raise ValueError("must search over at least one train key, got none")
        return self


def _default_space() -> SpaceConfig:
    return SpaceConfig(
        fusion=["concat", "weighted", "attention", "gated", "late", "tensor", "lowrank"],
        hidden=[32, 64, 128],
        dropout=Range(low=0.0, high=0.5),
        modality_dropout=Range(low=0.0, high=0.4),
        learning_rate=Range(low=0.0003, high=0.01, log=True),
        batch_size=[16, 32, 64],
    )


class TuneConfig(Section):
    n_trials: PositiveInt = 20
    timeout_s: Annotated[float, Field(gt=0.0)] | None = None
    seed: Annotated[int, Field(ge=0)] = 42
    pruner: PrunerName = "median"
    pruner_startup_trials: Annotated[int, Field(ge=0)] = 3
    pruner_warmup_epochs: Annotated[int, Field(ge=0)] = 3
    n_workers: PositiveInt = 1
    storage: Annotated[str, Field(pattern=r"://")] = Field(
        "sqlite:///optuna.db", description="a SQLAlchemy URL such as sqlite:///optuna.db"
    )
    study_name: Annotated[str, MinLen(1)] = "babelfuse"
    epochs: PositiveInt = 30
    baselines: bool = True
    logreg_c: Annotated[list[Annotated[float, Field(gt=0.0)]], MinLen(1)] = Field(
        default_factory=lambda: [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]
    )
    space: SpaceConfig = Field(default_factory=_default_space)


# ----------------------------------------------------------------------------------------- evaluate
class EvaluateConfig(Section):
    bootstrap: PositiveInt = 1000
    ci: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.95
    missing_rates: Annotated[list[Share], MinLen(1)] = Field(default_factory=lambda: [0.0, 0.25, 0.5, 1.0])
    calibration_bins: Annotated[int, Field(ge=2)] = 10
    # Training seeds: the train stage writes models/seeds/<seed>/; evaluate reports mean and std over them.
    seeds: Annotated[list[Annotated[int, Field(ge=0)]], MinLen(1)] = Field(
        default_factory=lambda: [42, 43, 44]
    )
    # Few-shot curve: k labelled target-language posts per class from the `fewshot` split (0 = zero-shot).
    few_shot: list[Annotated[int, Field(ge=0)]] = Field(default_factory=lambda: [0, 5, 10, 25])


# ----------------------------------------------------------------------------------------- register
class RegisterConfig(Section):
    model_name: Annotated[str, MinLen(1)] = "babelfuse"
    auto_promote: bool = True
    # Promotion gate (scores the frozen `gate` split only; see serving/gate.py).
    margin: float = 0.0
    alpha: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.05
    tolerance: Annotated[float, Field(ge=0.0)] = 0.05
    gate_bootstrap: PositiveInt = 1000
    max_rows: PositiveInt = 1024
    max_media_mb: Annotated[float, Field(gt=0.0)] = 10
    max_text_chars: PositiveInt = 2000
    max_audio_seconds: Annotated[float, Field(gt=0.0)] = 30
    max_request_mb: Annotated[float, Field(gt=0.0)] = 128
    text_threads: PositiveInt = 1
    # Worker processes that decode and encode media of large requests (0: all in the serving process).
    media_processes: Annotated[int, Field(ge=0)] = 2
    media_pool_min_posts: PositiveInt = 32
    # Serving processes keep the memory they free (glibc): big requests skip page faults (serving/memory.py).
    keep_freed_memory: bool = True
    # Folder the served model appends request metadata to (Parquet; never media); None = no log.
    inference_log: str | None = None


# ------------------------------------------------------------------------------------------ the file
class Config(Section):
    """The whole ``params.yaml``; a section left out of the file gets its defaults."""

    seed: Annotated[int, Field(ge=0)] = 42
    data: DataConfig = Field(default_factory=DataConfig)
    validate_: ValidateConfig = Field(default_factory=ValidateConfig, alias="validate")
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    fuse: FuseConfig = Field(default_factory=FuseConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    tune: TuneConfig = Field(default_factory=TuneConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    register_: RegisterConfig = Field(default_factory=RegisterConfig, alias="register")

    model_config = ConfigDict(**Section.model_config, populate_by_name=True)

    def section(self, name: str) -> Any:
        """One section as plain Python (dicts, lists, scalars) with every default filled in."""
        if name not in SECTIONS:
            raise BabelfuseError(f"params.yaml has no section '{name}' (sections: {', '.join(SECTIONS)})")
        return self.model_dump(by_alias=True, exclude_none=False)[name]

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)


SECTIONS: tuple[str, ...] = tuple(f.alias or name for name, f in Config.model_fields.items())


# ----------------------------------------------------------------------------------- error messages
def _plain(annotation: Any) -> str:
    """What a value of ``annotation`` must be, in words."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _with_bounds(_plain(args[0]), args[1:])
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin is list:
        return f"a list of {_plural(_plain(args[0]))}"
    if origin is dict:
        return "a mapping"
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return " or ".join(_plain(a) for a in rest) + " or null"
    if args:
        return " or ".join(_plain(a) for a in args)
    words = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if annotation in words:
        return words[annotation]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "a mapping"
    return str(annotation)


def _plural(phrase: str) -> str:
    for single, many in (("an integer", "integers"), ("a number", "numbers"), ("a string", "strings")):
        if phrase.startswith(single):
            return many + phrase[len(single) :]
    return phrase


def _with_bounds(phrase: str, metadata: Any) -> str:
    low = high = None
    for item in metadata:
        for sub in getattr(item, "metadata", [item]):
            if isinstance(sub, Ge | Gt):
                low = (">=" if isinstance(sub, Ge) else ">", sub.ge if isinstance(sub, Ge) else sub.gt)
            elif isinstance(sub, Le | Lt):
                high = ("<=" if isinstance(sub, Le) else "<", sub.le if isinstance(sub, Le) else sub.lt)
            elif isinstance(sub, MinLen) and sub.min_length == 1:
                phrase = "a non-empty " + phrase.removeprefix("a ")
    if low and high:
        left, right = "[" if low[0] == ">=" else "(", "]" if high[0] == "<=" else ")"
        return f"{phrase} in {left}{low[1]:g}, {high[1]:g}{right}"
    for bound in (low, high):
        if bound:
            phrase += f" {bound[0]} {bound[1]:g}"
    return phrase


def describe(field: FieldInfo) -> str:
    """``an integer >= 1``, ``one of fail, quarantine``, ... for one field (its description if set)."""
    if field.description:
        return field.description
    return _with_bounds(_plain(field.annotation), field.metadata)


def _field_path(loc: tuple[Any, ...]) -> tuple[list[str], FieldInfo | None, type[BaseModel]]:
    """Follow an error location through the models: (the keys walked, the last field, its model).

    Stops at the first step that is not a field (a list index, a union tag, an unknown key);
    a mapping of models (``data.sizes``) takes its free key and goes on into the model.
    """
    model: type[BaseModel] = Config
    keys: list[str] = []
    field: FieldInfo | None = None
    steps = list(loc)
    while steps:
        by_key = {f.alias or name: f for name, f in model.model_fields.items()}
        step = steps.pop(0)
        if not isinstance(step, str) or step not in by_key:
            break
        keys.append(step)
        field = by_key[step]
        inner = field.annotation
        if get_origin(inner) is dict and _is_model(get_args(inner)[1]) and steps:
            keys.append(str(steps.pop(0)))
            inner, field = get_args(inner)[1], None
        if not _is_model(inner):
            break
        model = inner
    return keys, field, model


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _value_at(raw: Any, loc: tuple[Any, ...]) -> Any:
    for step in loc:
        try:
            raw = raw[step]
        except (KeyError, IndexError, TypeError):
            return None
    return raw


def _known(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _unknown_key(source: str, loc: tuple[Any, ...]) -> str:
    keys, _, model = _field_path(loc[:-1])
    prefix = ".".join(str(k) for k in loc[:-1])
    name = str(loc[-1])
    dotted = f"{prefix}.{name}" if prefix else name
    known = _known(model) if len(keys) == len(loc) - 1 else []
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = (
        f"did you mean {prefix + '.' if prefix else ''}{close[0]}?"
        if close
        else (f"known keys: {', '.join(known)}" if known else "remove it")
    )
    return f"{source}: {dotted} is not a known key; {hint}"


def error_line(err: ValidationError, raw: Any, source: str = "params.yaml") -> str:
    """The first problem of ``err`` as one line naming its dotted key (plus how many keys have others)."""
    errors = err.errors()
    first, loc = errors[0], tuple(errors[0]["loc"])
    others = {tuple(_field_path(tuple(e["loc"]))[0]) for e in errors} - {tuple(_field_path(loc)[0])}
    more = f" (and problems with {len(others)} more key{'s' if len(others) > 1 else ''})" if others else ""
    if first["type"] == "extra_forbidden":
        return _unknown_key(source, loc) + more
    keys, field, _ = _field_path(loc)
    dotted = ".".join(keys)
    if first["type"] == "value_error":  # our validators: "<key> must ..., got ..." relative to loc
        message = str(first["msg"]).removeprefix("Value error, ")
        if message.startswith("must "):
            return f"{source}: {dotted} {message}{more}"
        return f"{source}: {dotted + '.' if dotted else ''}{message}{more}"
    if field is None:
        return f"{source}: {dotted or '.'.join(map(str, loc))}: {first['msg']}{more}"
    return f"{source}: {dotted} must be {describe(field)}, got {_value_at(raw, keys)!r}{more}"


# -------------------------------------------------------------------------------------------- loading
def read_yaml(path: Path | str) -> dict[str, Any]:
    """params.yaml as raw YAML (a mapping); unreadable or malformed YAML is one-line user error."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BabelfuseError(f"{path}: not found (run from the project root, or pass --params)") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise BabelfuseError(f"{path}: not valid YAML{where}: {getattr(err, 'problem', err)}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BabelfuseError(f"{path}: must be a mapping of sections, got {type(raw).__name__}")
    return raw


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """``["train.fusion=gated", "train.hidden=128"]`` laid over ``raw`` (values parsed as YAML).

    An empty value (``train.hidden=``) keeps the file's value, so MLproject parameters can default
    to "whatever params.yaml says".
    """
    out = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise BabelfuseError(f"--set {item!r}: expected section.key=value")
        if not text.strip():
            continue
        *parents, leaf = key.strip().split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise BabelfuseError(f"--set {item!r}: {part} is not a section")
        try:
            node[leaf] = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise BabelfuseError(f"--set {item!r}: the value is not valid YAML ({err})") from None
    return out


def validate(raw: dict[str, Any], source: str = "params.yaml") -> Config:
    """A raw params mapping -> :class:`Config`, or a one-line ``BabelfuseError`` naming the key."""
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise BabelfuseError(error_line(err, raw, source)) from None


def load_config(path: Path | str = paths.PARAMS, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read and validate the whole params file (plus ``--set`` overrides): typed access to every key.

    A problem that only the overrides bring in is reported as ``--set: <key> ...``.
    """
    raw = read_yaml(path)
    merged = apply_overrides(raw, overrides)
    try:
        return validate(merged, source=str(path))
    except BabelfuseError:
        if merged == raw:
            raise
        validate(raw, source=str(path))  # the file alone is wrong: say so
        return validate(merged, source="--set")


def add_config_arguments(parser: argparse.ArgumentParser, params: bool = True) -> None:
    """``--params FILE`` (unless the stage has its own) and repeatable ``--set SECTION.KEY=VALUE``."""
    if params:
        parser.add_argument("--params", type=Path, default=paths.PARAMS, help="params file (params.yaml)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one param for this run (a YAML value, validated like params.yaml; empty: keep the file's)",
    )


def config_from_args(args: argparse.Namespace) -> Config:
    """The validated config a stage runs with: ``--params`` plus its ``--set`` overrides."""
    return load_config(getattr(args, "params", paths.PARAMS), getattr(args, "overrides", []))
