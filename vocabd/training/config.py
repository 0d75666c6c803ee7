"""The settings of one training run: plain data, saved as `runs/NAME/config.json`."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from vocabd.config import Config, limit_of
from vocabd.errors import VocabdError
from vocabd.files import read_json

# Which Linear layers get an adapter (see README "Training"), as a function of the encoder's layer count. PEFT
# reads a list as module-name suffixes and a single string as a regex over the full module path.
_PROJ = r"(q_proj|k_proj|v_proj|o_proj|fc1|fc2)"
_DECODER = rf"decoder\.layers\.\d+\.(self_attn|encoder_attn|mlp)\.{_PROJ}"


def _upper_encoder(layers: int) -> str:
    upper = "|".join(str(i) for i in range(layers // 2, layers))
    return rf".*(encoder\.layers\.({upper})\.(self_attn|mlp)\.{_PROJ}|{_DECODER})"


TARGETS: dict[str, Callable[[int], list[str] | str]] = {
    # every projection in both stacks: most capacity, and most freedom to drift on other speakers
    "all": lambda layers: ["q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2"],
    # the decoder and the encoder's upper half: the lower encoder layers (nearest the sound) stay as they were,
    # so backward stops halfway down the encoder (30% less time a step than "all"; docs/benchmarks.md)
    "upper": _upper_encoder,
    # attention only (self + cross attention in both stacks)
    "attention": lambda layers: ["q_proj", "k_proj", "v_proj", "o_proj"],
    # the decoder only: words, spelling and style; the acoustic encoder stays as it was
    "decoder": lambda layers: rf".*{_DECODER}",
    # the encoder only: the acoustics of the voice; the decoder's language model stays as it was
    "encoder": lambda layers: rf".*encoder\.layers\.\d+\.(self_attn|mlp)\.{_PROJ}",
}


_DEFAULTS = Config()


def lookup(config: Config, key: str) -> Any:
    """The value of `vocabd.toml` key `key` ("train.lr") in `config`."""
    section, name = key.split(".")
    return getattr(getattr(config, section), name)


def setting(key: str, default: Any = None) -> Any:
    """A run setting read from `vocabd.toml` key `key`; its default is that key's default unless given."""
    return field(default=lookup(_DEFAULTS, key) if default is None else default, metadata={"setting": key})


@dataclass
class RunConfig:
    """Built once by the launcher (`training.options`), saved as `config.json`; the trainer reads only that."""

    name: str
    train: str  # manifest path (absolute)
    model: str = setting("model.base")  # hub id, local folder or "moonshine-cpp"
    offline_fallback: bool = setting("model.offline_fallback")
    workspace: str = ""  # the workspace root: audio of a manifest inside it must stay inside it
    allow_outside: bool = setting("data.allow_outside")
    dev: str = ""  # dev manifest; "" = carve from train
    replay: str = setting("train.replay")  # general-speech manifest mixed into training (absolute); "" = none
    replay_ratio: float = setting("train.replay_ratio", 0.0)  # share of replay clips among the training clips
    max_steps: int = setting("full.max_steps")
    max_epochs: float = setting("train.max_epochs")  # fewer steps when these passes over the data end sooner
    eval_interval: int = setting("full.eval_interval")
    lr: float = setting("train.lr")
    lora_r: int = setting("train.lora_r")
    lora_alpha: int = setting("train.lora_alpha")
    lora_dropout: float = setting("train.lora_dropout")
    use_dora: bool = setting("train.use_dora")
    targets: str = setting("train.targets", "all")  # a key of TARGETS (training.options resolves the toml's auto)
    batch_size: int = setting("train.batch_size")
    warmup_steps: int = setting("train.warmup_steps")
    weight_decay: float = setting("train.weight_decay")
    seed: int = setting("train.seed")
    dev_fraction: float = setting("train.dev_fraction")
    dev_max_clips: int = setting("train.dev_max_clips")
    replay_dev_clips: int = setting("train.replay_dev_clips")
    replay_weight: float = setting("train.replay_weight")
    pause_on_battery: bool = setting("train.pause_on_battery")  # wait (checkpointed, lock released) on battery
    pause_when_busy: bool = setting("train.pause_when_busy")  # the same while other processes leave no core free
    augment: float = setting("train.augment")  # share of synthesized clips put in a room with noise (augment.py)
    kl_weight: float = setting("train.kl_weight")  # KL to the base model on replay audio (training/anchor.py)

    def validate(self) -> None:
        """The values `vocabd.toml` allows for each setting: a flag may not set what the file may not."""
        problems = []
        for f in dataclasses.fields(self):
            limit = limit_of(f.metadata["setting"]) if "setting" in f.metadata else None
            if limit is not None and (problem := limit.problem(getattr(self, f.name))) is not None:
                problems.append(f"{f.name} {problem}")
        if self.targets not in TARGETS:
            problems.append(f"targets {self.targets!r} is not an adapter placement ({', '.join(TARGETS)})")
        if self.replay_ratio > 0 and not self.replay:
            problems.append("a replay ratio needs --replay MANIFEST")
        if problems:
            raise VocabdError(f"run {self.name}: " + "; ".join(problems))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_file(cls, path: Path) -> "RunConfig":
        data = read_json(path)
        if data is None:
            raise VocabdError(f"{path}: no run config")
        if data.get("extra") == {}:  # written by older versions, never used
            del data["extra"]
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise VocabdError(f"{path}: unknown run settings {sorted(unknown)}")
        return cls(**data)
