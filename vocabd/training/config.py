"""The settings of one training run: plain data, saved as `runs/NAME/config.json`."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from vocabd.config import Config, Setting, limit_of, run_settings
from vocabd.errors import VocabdError
from vocabd.files import read_json

# Which Linear layers get an adapter (see docs/training.md), as a function of the encoder's layer count. PEFT
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


def lookup(config: Config, key: str) -> Any:
    """The value of `vocabd.toml` key `key` ("train.lr") in `config`."""
    section, name = key.split(".")
    return getattr(getattr(config, section), name)


# A run built without a workspace has no replay pool and no clips to choose its adapter placement by.
BARE_DEFAULTS = {"replay_ratio": 0.0, "targets": "all"}


@dataclass(kw_only=True)
class _RunConfig:
    """A run without its settings: its name, its manifests and the workspace it belongs to (`RunConfig` adds
    the settings)."""

    name: str
    train: str  # manifest path (absolute)
    workspace: str = ""  # the workspace root: audio of a manifest inside it must stay inside it
    dev: str = ""  # dev manifest; "" = carve from train

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
        if data.get("extra") == {}:  # an empty table that some config.json files hold; it means nothing
            del data["extra"]
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise VocabdError(f"{path}: unknown run settings {sorted(unknown)}")
        return cls(**data)


def _run_field(s: Setting) -> tuple[str, type, Any]:
    return s.run, s.kind, field(default=BARE_DEFAULTS.get(s.run, s.default), metadata={"setting": s.key})


RunConfig = dataclasses.make_dataclass("RunConfig", [_run_field(s) for s in run_settings()], bases=(_RunConfig,),
                                       kw_only=True)
RunConfig.__module__ = __name__
RunConfig.__doc__ = """The settings of one run: built once by the launcher (`training.options`), saved as
`config.json`; the trainer reads only that. Its fields are the run settings declared in `vocabd.config`."""
