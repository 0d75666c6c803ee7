"""From command-line flags (or their `vocabd.toml` defaults) to a RunConfig, and back to flags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vocabd.errors import VocabdError
from vocabd.training.config import RunConfig
from vocabd.workspace import Workspace


def build_run_config(ws: Workspace, name: str, train: Path | None, flags: dict[str, Any]) -> RunConfig:
    """A new run's settings: a flag given on the command line wins, else the workspace's `vocabd.toml`."""
    if train is None:
        raise VocabdError(f"run {name}: --train MANIFEST is required for a new run (or use --resume)")
    t, full = ws.config.train, ws.config.full
    replay = flags.get("replay") or (ws.root / t.replay if t.replay else None)

    def pick(key: str, default: Any) -> Any:
        return default if flags.get(key) is None else flags[key]

    config = RunConfig(
        name=name,
        train=str(_existing(train)),
        model=pick("model", ws.config.model.base),
        dev=str(_existing(flags["dev"])) if flags.get("dev") else "",
        replay=str(_existing(replay)) if replay else "",
        replay_ratio=pick("replay_ratio", t.replay_ratio) if replay else (flags.get("replay_ratio") or 0.0),
        max_steps=pick("max_steps", full.max_steps),
        eval_interval=pick("eval_interval", full.eval_interval),
        lr=pick("lr", t.lr),
        lora_r=pick("lora_r", t.lora_r),
        lora_alpha=pick("lora_alpha", t.lora_alpha),
        lora_dropout=pick("lora_dropout", t.lora_dropout),
        use_dora=pick("use_dora", t.use_dora),
        targets=pick("targets", "all"),
        batch_size=pick("batch_size", t.batch_size),
        warmup_steps=pick("warmup_steps", t.warmup_steps),
        seed=pick("seed", t.seed),
        pause_on_battery=t.pause_on_battery,
        kl_weight=pick("kl_weight", t.kl_weight) if replay else 0.0,
        allow_outside=True,
    )
    config.validate()
    return config


def config_args(config: RunConfig) -> list[str]:
    """The flags that make a child process build exactly `config`."""
    args = ["--train", config.train, "--model", config.model, "--max-steps", str(config.max_steps),
            "--eval-interval", str(config.eval_interval), "--lr", repr(config.lr), "--lora-r", str(config.lora_r),
            "--lora-alpha", str(config.lora_alpha), "--lora-dropout", repr(config.lora_dropout),
            "--use-dora" if config.use_dora else "--no-dora", "--targets", config.targets,
            "--batch-size", str(config.batch_size), "--warmup-steps", str(config.warmup_steps),
            "--seed", str(config.seed)]
    if config.dev:
        args += ["--dev", config.dev]
    if config.replay:
        args += ["--replay", config.replay, "--replay-ratio", repr(config.replay_ratio)]
        args += ["--kl-weight", repr(config.kl_weight)]
    return args


def _existing(path: Path | str) -> Path:
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise VocabdError(f"{path}: manifest not found")
    return path
