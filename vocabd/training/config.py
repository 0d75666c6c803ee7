"""The settings of one training run: plain data, saved as `runs/NAME/config.json`."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from vocabd.errors import VocabdError

# Which Linear layers get an adapter (see README "Training"). PEFT reads a list as module-name suffixes and
# a single string as a regex over the full module path.
_PROJ = r"(q_proj|k_proj|v_proj|o_proj|fc1|fc2)"
TARGETS: dict[str, list[str] | str] = {
    # every projection in both stacks: most capacity, and most freedom to drift on other speakers
    "all": ["q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2"],
    # attention only (self + cross attention in both stacks)
    "attention": ["q_proj", "k_proj", "v_proj", "o_proj"],
    # the decoder only: words, spelling and style; the acoustic encoder stays as it was
    "decoder": rf".*decoder\.layers\.\d+\.(self_attn|encoder_attn|mlp)\.{_PROJ}",
    # the encoder only: the acoustics of the voice; the decoder's language model stays as it was
    "encoder": rf".*encoder\.layers\.\d+\.(self_attn|mlp)\.{_PROJ}",
}


@dataclass
class RunConfig:
    name: str
    train: str  # manifest path (absolute)
    model: str  # hub id, local folder or "moonshine-cpp"
    dev: str = ""  # dev manifest; "" = carve from train
    replay: str = ""  # general-speech manifest mixed into training; "" = none
    replay_ratio: float = 0.0  # share of replay clips among the training clips
    max_steps: int = 1000
    eval_interval: int = 100
    lr: float = 1e-4
    lora_r: int = 32
    lora_alpha: int = 64
    lora_dropout: float = 0.1
    use_dora: bool = True
    targets: str = "all"  # a key of TARGETS
    batch_size: int = 8
    warmup_steps: int = 20
    weight_decay: float = 0.0
    seed: int = 0
    dev_fraction: float = 0.08
    dev_max_clips: int = 40
    replay_dev_clips: int = 24  # held-out replay clips: a general-speech WER/loss watched during training
    replay_weight: float = 1.0  # weight of the replay-dev WER when choosing best/
    pause_on_battery: bool = True  # wait (checkpointed, lock released) while the machine runs on battery
    kl_weight: float = 0.0  # KL to the base model on general audio (training/anchor.py); 0 = off
    allow_outside: bool = True
    extra: dict = field(default_factory=dict)

    def validate(self) -> None:
        problems = []
        if self.targets not in TARGETS:
            problems.append(f"targets must be one of {', '.join(TARGETS)}, got {self.targets!r}")
        if not 0.0 <= self.replay_ratio < 1.0:
            problems.append(f"replay ratio must be in [0, 1), got {self.replay_ratio}")
        if self.replay_ratio > 0 and not self.replay:
            problems.append("a replay ratio needs --replay MANIFEST")
        for key in ("max_steps", "eval_interval", "batch_size", "lora_r"):
            if getattr(self, key) < 1:
                problems.append(f"{key} must be at least 1, got {getattr(self, key)}")
        if self.lr <= 0:
            problems.append(f"lr must be positive, got {self.lr}")
        if problems:
            raise VocabdError(f"run {self.name}: " + "; ".join(problems))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_file(cls, path: Path) -> "RunConfig":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise VocabdError(f"{path}: cannot read run config ({e})") from e
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise VocabdError(f"{path}: unknown run settings {sorted(unknown)}")
        return cls(**data)
