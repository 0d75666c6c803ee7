"""Workspace settings: plain dataclasses, read from `vocabd.toml`, each with its default and allowed values.

This is the one declaration of vocabd's settings. A training run's settings (`training.config.RunConfig`), the
`vocabd run-experiment` flags, the `vocabd.toml` that `vocabd init` writes and the list in `docs/settings.md`
are all derived from it (`settings()`), so a new setting is one line here."""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vocabd.errors import ConfigError

CONFIG_NAME = "vocabd.toml"
AUGMENT = 1.0  # measured in docs/benchmarks.md
KL_WEIGHT = 0.0  # measured in docs/benchmarks.md: on by default only where it helped
SYNTHESIS_BACKENDS = ("f5_mlx", "piper", "espeak")  # in the order `auto` tries them
TARGET_NAMES = ("all", "upper", "attention", "decoder", "encoder")  # the adapter placements of training.config.TARGETS
TARGET_CHOICES = ("auto", *TARGET_NAMES)  # auto: picked from the training clips (training/options.py)
GENERAL_POOLS = ("auto", "hub", "synthetic", "none")  # vocabd.general.pool
UNBOUNDED = math.inf


@dataclass(frozen=True)
class Limit:
    """The values a setting allows: a range of numbers (ends included unless open), or a list of choices."""

    low: float = -UNBOUNDED
    high: float = UNBOUNDED
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()

    def problem(self, value: Any) -> str | None:
        """Why `value` is not allowed (None when it is)."""
        if self.choices:
            return None if value in self.choices else f"must be one of {', '.join(self.choices)}, got {value!r}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number in {self}, got {value}"
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return None if above and below else f"must be in {self}, got {value}"

    def __str__(self) -> str:
        if self.choices:
            return " | ".join(self.choices)
        left = "(" if self.low_open or self.low == -UNBOUNDED else "["
        right = ")" if self.high_open or self.high == UNBOUNDED else "]"
        return f"{left}{_shown(self.low)}, {_shown(self.high)}{right}"


def _shown(bound: float) -> str:
    if math.isinf(bound):
        return "inf" if bound > 0 else "-inf"
    return str(int(bound)) if bound == int(bound) else repr(bound)


def setting(default: Any, help: str = "", limit: Limit | None = None, *, run: str = "",
            flag: tuple[str, ...] = (), path: bool = False) -> Any:
    """A setting with its default, what it is for (`help`, shown beside it in the `vocabd.toml` that `vocabd init`
    writes) and the values it allows (`limit`, checked when the file is read; None: any value of its type).

    `run`: the setting's name in a training run's settings and its `run-experiment` flag (`--name-with-dashes`,
    or `flag` when that reads better); "" when a run does not use it. `path`: the value names a file."""
    metadata: dict[str, Any] = {"help": help} if help else {}
    if limit is not None:
        metadata["limit"] = limit
    if run:
        metadata["run"] = run
        dashed = run.replace("_", "-")
        metadata["flag"] = flag or ((f"--{dashed}/--no-{dashed}",) if isinstance(default, bool) else (f"--{dashed}",))
        metadata["path"] = path
    return field(default=default, metadata=metadata)


def limited(default: Any, low: float = -UNBOUNDED, high: float = UNBOUNDED, *, low_open: bool = False,
            high_open: bool = False, choices: tuple[str, ...] = (), help: str = "", run: str = "") -> Any:
    """A setting with its default and the values it allows (checked when `vocabd.toml` is read)."""
    return setting(default, help, Limit(low, high, low_open, high_open, choices), run=run)


SEED = dict(low=0, high=2**32 - 1)
STEPS = dict(low=1, high=10_000_000)
RATIO = dict(low=0, high=1)


@dataclass
class ModelConfig:
    base: str = setting("UsefulSensors/moonshine-tiny", "hub id or local folder; \"moonshine-cpp\" = offline base",
                        run="model", flag=("--model", "-m"))
    offline_fallback: bool = setting(True, "build the offline base model when the hub is unreachable",
                                     run="offline_fallback")


@dataclass
class PhaseConfig:
    clips: int = limited(5, 1, 1_000_000, help="synthetic jargon clips the phase makes")
    max_steps: int = limited(50, **STEPS, help="training steps at most", run="max_steps")
    eval_interval: int = limited(25, **STEPS, help="steps between dev evaluations and checkpoints", run="eval_interval")


@dataclass
class TrainConfig:
    lr: float = limited(1e-4, 0, 0.1, low_open=True, run="lr")
    lora_r: int = limited(32, 1, 1024, run="lora_r")
    lora_alpha: int = limited(64, 1, 4096, run="lora_alpha")
    lora_dropout: float = limited(0.0, 0, 1, high_open=True, run="lora_dropout",
                                  help="0: the fused DoRA forward (> 0 takes PEFT's slower path)")
    use_dora: bool = setting(True, "DoRA (weight-decomposed LoRA); false: plain LoRA", run="use_dora",
                             flag=("--use-dora/--no-dora",))
    batch_size: int = limited(8, 1, 1024, run="batch_size")
    warmup_steps: int = limited(20, 0, STEPS["high"], run="warmup_steps")
    max_epochs: float = limited(2.0, 0, 10_000, help="passes over the training clips (with their replay share) at "
                                "most: a run ends before max_steps when they are done (0 = no limit)", run="max_epochs")
    replay: str = setting("", "general-speech manifest mixed into training (\"\" = none)", run="replay", path=True)
    replay_ratio: float = limited(0.3, 0, 1, high_open=True, run="replay_ratio",
                                  help="share of replay clips among the training clips (1 would leave no room for "
                                       "the user's own)")
    augment: float = limited(AUGMENT, 0, 1, help="share of the clips that are not the user's recordings (synthesized, "
                             "replay) heard through a random room and noise (training/augment.py)", run="augment")
    kl_weight: float = limited(KL_WEIGHT, 0, 100,
                               help="weight of a KL to the base model on replay audio, which keeps the adapter "
                                    "close to it on general speech (0 = off; training/anchor.py)", run="kl_weight")
    replay_dev_clips: int = limited(12, 0, 10_000,
                                    help="replay clips held out: a general-speech WER watched in training",
                                    run="replay_dev_clips")
    replay_weight: float = limited(1.0, 0, 100, help="weight of the replay-dev WER when choosing best/",
                                   run="replay_weight")
    targets: str = limited("auto", choices=TARGET_CHOICES,
                           help="which projections adapt; auto: upper with the user's recordings, all without "
                                "(docs/training.md)", run="targets")
    weight_decay: float = limited(0.0, 0, 1, run="weight_decay")
    dev_fraction: float = limited(0.08, 0, 0.5, low_open=True,
                                  help="training clips held out as dev (no dev manifest)", run="dev_fraction")
    dev_max_clips: int = limited(20, 1, 100_000, help="each dev evaluation transcribes these: small = cheap",
                                 run="dev_max_clips")
    seed: int = limited(0, **SEED, run="seed")
    stall_seconds: int = limited(600, 1, 7 * 24 * 3600,
                                 help="a run with no heartbeat for this long is \"stalled\"")
    pause_on_battery: bool = setting(True, "training waits while the machine runs on battery (resumes on mains)",
                                     run="pause_on_battery")
    pause_when_busy: bool = setting(False, "training waits while the other processes leave no core free (resumes "
                                           "after a minute that leaves one)", run="pause_when_busy")


@dataclass
class SynthesisConfig:
    backend: str = limited("auto", choices=("auto", *SYNTHESIS_BACKENDS))
    seed: int = limited(0, **SEED)
    workers: int = limited(2, 1, 64)


@dataclass
class MixConfig:
    synthetic_ratio: float = limited(0.5, **RATIO, help="share of synthetic clips in the mixed manifest")
    seed: int = limited(0, **SEED)


@dataclass
class DataConfig:
    allow_outside: bool = setting(False, "accept manifest audio paths that leave the workspace", run="allow_outside")


@dataclass
class GateConfig:
    safety_margin: float = limited(0.005, **RATIO,
                                   help="allowed safety-WER rise (absolute) before an adapter is kept out")
    require_safety: bool = setting(True, "with no safety yardstick of any kind, keep the adapter out")
    false_alarms_per_1000: float = limited(
        1.0, 0, 1000, help="jargon terms an adapter may write into the safety set's general speech, per 1,000 of its "
                           "words, where the base model writes fewer")


@dataclass
class BiasConfig:
    enabled: bool = setting(True, "favour the jargon list's terms while transcribing (vocabd/asr/biasing.py)")
    boost: float = limited(1.5, 0, 100,
                           help="logit bonus for continuing a started term (x (1 + ln depth)); half to start one")


@dataclass
class DecodeConfig:
    beams: int = limited(4, 1, 16, help="hypotheses kept while transcribing (beam search: a term the first guess "
                                        "missed can still win); 1 = greedy, about twice as fast")


@dataclass
class GeneralConfig:
    pool: str = limited("auto", choices=GENERAL_POOLS,
                        help="default general-speech pool; auto: hub if cached/reachable, else synthetic")
    sentences: int = limited(0, 0, 1_000_000, help="shipped sentences the synthetic pool uses (0 = all)")


# Phase 1's steps reach its run from the chain; a run's own defaults (`run-experiment`) are phase 2's.
PHASE_1 = {"runs": False}


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    mini: PhaseConfig = field(default_factory=PhaseConfig, metadata=PHASE_1)
    full: PhaseConfig = field(default_factory=lambda: PhaseConfig(clips=500, max_steps=1000, eval_interval=200))
    train: TrainConfig = field(default_factory=TrainConfig)
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)
    mix: MixConfig = field(default_factory=MixConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    general: GeneralConfig = field(default_factory=GeneralConfig)
    data: DataConfig = field(default_factory=DataConfig)
    bias: BiasConfig = field(default_factory=BiasConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)


@dataclass(frozen=True)
class Setting:
    """One `vocabd.toml` setting as declared above: its key, default, allowed values and purpose, and, when a
    training run uses it, its name there (`run`), its `run-experiment` flag and whether it names a file."""

    section: str
    name: str
    default: Any
    limit: Limit | None = None
    help: str = ""
    run: str = ""
    flag: tuple[str, ...] = ()
    path: bool = False

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def kind(self) -> type:
        return type(self.default)


def settings() -> list[Setting]:
    """Every setting, section by section, in the order of `vocabd.toml`."""
    config, found = Config(), []
    for top in dataclasses.fields(config):
        table = getattr(config, top.name)
        for f in dataclasses.fields(table):
            run = f.metadata.get("run", "") if top.metadata.get("runs", True) else ""
            found.append(Setting(top.name, f.name, getattr(table, f.name), f.metadata.get("limit"),
                                 f.metadata.get("help", ""), run, f.metadata["flag"] if run else (),
                                 bool(run) and f.metadata["path"]))
    return found


def run_settings() -> list[Setting]:
    """The settings a training run takes from `vocabd.toml` (and `run-experiment` from its flags)."""
    return [s for s in settings() if s.run]


def load_config(path: Path) -> Config:
    """Read `vocabd.toml`; a missing file gives the defaults. A wrong key, type or value is an error naming
    the key, the file and what is allowed, before anything runs on it."""
    if not path.exists():
        return Config()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(path, "-", f"not valid TOML: {e}") from e
    return _build(Config(), data, path, prefix="")


def _build(default: Any, data: dict[str, Any], path: Path, prefix: str) -> Any:
    """`default` with the values of `data` put in, checked against the defaults' types and allowed values."""
    fields = {f.name: f for f in dataclasses.fields(default)}
    values = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if key not in fields:
            raise ConfigError(path, name, f"unknown setting (known: {', '.join(fields)})")
        current = getattr(default, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(path, name, "must be a table")
            values[key] = _build(current, value, path, prefix=f"{name}.")
            continue
        values[key] = _coerce(value, type(current), path, name)
        limit = fields[key].metadata.get("limit")
        if limit is not None and (problem := limit.problem(values[key])) is not None:
            raise ConfigError(path, name, problem)
    return dataclasses.replace(default, **values)


def _coerce(value: Any, kind: type, path: Path, name: str) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(path, name, f"must be {kind.__name__}, got {type(value).__name__} {value!r}")
    return value


def limit_of(key: str) -> Limit | None:
    """The values `vocabd.toml` key `key` ("train.lr") allows; None when any value of its type will do."""
    return next(s for s in settings() if s.key == key).limit


def render_config() -> str:
    """What `vocabd init` writes: every setting as a comment with its default, the values it allows and what it
    is for, under its section's header. Nothing is set, so the file reads back as `Config()` and follows the
    code's defaults when they change; an uncommented line is a setting the user chose."""
    lines = [
        "# vocabd workspace settings. Every setting is shown commented out, with its default and the values it",
        "# allows; a commented setting follows vocabd's default (also when a new version changes it). To change",
        "# one, uncomment its line under its [section] and edit the value.",
    ]
    for section in dict.fromkeys(s.section for s in settings()):
        rows = [(f"# {s.name} = {toml_value(s.default)}", "; ".join(filter(None, [str(s.limit or ""), s.help])))
                for s in settings() if s.section == section]
        width = max(len(assignment) for assignment, _ in rows)
        lines.append(f"\n[{section}]")
        lines += [f"{assignment:<{width}}  # {note}" if note else assignment for assignment, note in rows]
    return "\n".join(lines) + "\n"


def toml_value(value: Any) -> str:
    """`value` as `vocabd.toml` writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)
