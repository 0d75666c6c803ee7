"""Workspace settings: plain dataclasses, read from `vocabd.toml`, defaults from the plan."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vocabd.errors import ConfigError

CONFIG_NAME = "vocabd.toml"
KL_WEIGHT = 0.0  # measured in docs/benchmarks.md (issue 8): on by default only where it helped


@dataclass
class ModelConfig:
    base: str = "UsefulSensors/moonshine-tiny"  # hub id or local folder; "moonshine-cpp" = offline base
    offline_fallback: bool = True  # build the offline base model when the hub is unreachable


@dataclass
class PhaseConfig:
    clips: int = 5
    max_steps: int = 50
    eval_interval: int = 25


@dataclass
class TrainConfig:
    lr: float = 1e-4
    lora_r: int = 32
    lora_alpha: int = 64
    lora_dropout: float = 0.1
    use_dora: bool = True
    batch_size: int = 8
    warmup_steps: int = 20
    replay: str = ""  # general-speech manifest mixed into training ("" = none)
    replay_ratio: float = 0.3
    kl_weight: float = KL_WEIGHT  # keep close to the base model on general audio (training/anchor.py)
    replay_dev_clips: int = 24  # replay clips held out as a general-speech WER/loss watched during training
    replay_weight: float = 1.0  # weight of the replay-dev WER when choosing best/
    targets: str = "all"  # which projections adapt: all | attention | decoder | encoder (README "Training")
    weight_decay: float = 0.0
    dev_fraction: float = 0.08  # share of the training clips held out as the dev split (no dev manifest)
    dev_max_clips: int = 40
    seed: int = 0
    stall_seconds: int = 600  # a run with no heartbeat for this long is "stalled"
    pause_on_battery: bool = True  # training waits while the machine runs on battery (resumes on mains)


@dataclass
class SynthesisConfig:
    backend: str = "auto"  # auto | f5_mlx | piper | espeak
    seed: int = 0
    workers: int = 2


@dataclass
class MixConfig:
    synthetic_ratio: float = 0.5  # share of synthetic clips in the mixed manifest
    seed: int = 0


@dataclass
class DataConfig:
    allow_outside: bool = False  # accept manifest audio paths that leave the workspace


@dataclass
class GateConfig:
    safety_margin: float = 0.005  # allowed safety-WER rise (absolute) before an adapter is kept out
    require_safety: bool = True  # with no safety yardstick of any kind, keep the adapter out


@dataclass
class BiasConfig:
    enabled: bool = True  # favour the jargon list's terms while transcribing (vocabd/asr/biasing.py)
    boost: float = 3.0  # logit bonus for continuing a started term (x (1 + ln depth)); half of it to start one


@dataclass
class GeneralConfig:
    pool: str = "auto"  # default general-speech pool: auto (hub if cached/reachable, else synthetic) | hub | synthetic | none
    sentences: int = 0  # shipped sentences the synthetic pool uses (0 = all)


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    mini: PhaseConfig = field(default_factory=PhaseConfig)
    full: PhaseConfig = field(default_factory=lambda: PhaseConfig(clips=500, max_steps=1000, eval_interval=100))
    train: TrainConfig = field(default_factory=TrainConfig)
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)
    mix: MixConfig = field(default_factory=MixConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    general: GeneralConfig = field(default_factory=GeneralConfig)
    data: DataConfig = field(default_factory=DataConfig)
    bias: BiasConfig = field(default_factory=BiasConfig)


def load_config(path: Path) -> Config:
    """Read `vocabd.toml`; a missing file gives the defaults, a wrong key or type names both."""
    if not path.exists():
        return Config()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(path, "-", f"not valid TOML: {e}") from e
    return _build(Config(), data, path, prefix="")


def _build(default: Any, data: dict[str, Any], path: Path, prefix: str) -> Any:
    """`default` with the values of `data` put in, checked against the defaults' types."""
    fields = {f.name for f in dataclasses.fields(default)}
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
        else:
            values[key] = _coerce(value, type(current), path, name)
    return dataclasses.replace(default, **values)


def _coerce(value: Any, kind: type, path: Path, name: str) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(path, name, f"must be {kind.__name__}, got {type(value).__name__} {value!r}")
    if kind in (int, float) and value < 0:
        raise ConfigError(path, name, f"must not be negative, got {value}")
    return value


def render_config(config: Config) -> str:
    """The config as TOML text (what `vocabd init` writes)."""
    lines = ["# vocabd workspace settings; delete a line to get its default back."]
    for top in dataclasses.fields(config):
        lines.append(f"\n[{top.name}]")
        for f in dataclasses.fields(getattr(config, top.name)):
            lines.append(f"{f.name} = {_toml_value(getattr(getattr(config, top.name), f.name))}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)
