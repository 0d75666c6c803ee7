"""A new run's settings, built once: `vocabd.toml`, then the command line's flags on top."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from vocabd.errors import VocabdError
from vocabd.manifest import load_manifest
from vocabd.training.config import RunConfig, lookup
from vocabd.workspace import Workspace


def build_run_config(ws: Workspace, name: str, train: Path | None, overrides: dict[str, Any]) -> RunConfig:
    """Every setting from the workspace's `vocabd.toml`; an override that is not None wins.

    `overrides` are RunConfig field names (the `run-experiment` flags, or the phase's steps).
    Paths from the toml are taken from the workspace root, paths given as flags from the current folder.
    """
    if train is None:
        raise VocabdError(f"run {name}: --train MANIFEST is required for a new run (or use --resume)")
    fields = dataclasses.fields(RunConfig)
    unknown = set(overrides) - {f.name for f in fields}
    if unknown:
        raise VocabdError(f"run {name}: unknown run settings {sorted(unknown)}")
    values = {f.name: lookup(ws.config, f.metadata["setting"]) for f in fields if "setting" in f.metadata}
    values["replay"] = str(replay_manifest(ws) or "")
    values.update({key: value for key, value in overrides.items() if value is not None})
    if not values["replay"] and overrides.get("replay_ratio") is None:
        values["replay_ratio"] = 0.0  # [train] replay_ratio applies to a replay pool; there is none
    if not values["replay"]:
        values["kl_weight"] = 0.0  # the anchor to the base model runs on the replay audio
    values["replay"] = str(_existing(values["replay"])) if values["replay"] else ""
    values["dev"] = str(_existing(values["dev"])) if values.get("dev") else ""
    train = _existing(train)
    if values["targets"] == "auto":
        values["targets"] = auto_targets(train)
    config = RunConfig(name=name, train=str(train), workspace=str(ws.root), **values)
    config.validate()
    return config


def auto_targets(train: Path) -> str:
    """`upper` when the run trains on the user's own recordings, `all` when on synthetic speech alone.

    With recordings, adapting the encoder's lower half bought nothing and cost a third of each step; trained on
    synthetic speech alone, `all` recognized the terms in unseen voices more often (docs/benchmark-log.md, 2026-12-02).
    """
    clips = load_manifest(train, allow_outside=True, check_audio=False)
    return "upper" if any(clip.source == "real" for clip in clips) else "all"


def replay_manifest(ws: Workspace) -> Path | None:
    """`[train] replay` (relative to the workspace root), else the default general-speech pool's replay part
    (`vocabd.general`), else None."""
    if not ws.config.train.replay:
        from vocabd.general.pool import pool_manifest

        return pool_manifest(ws, "replay")
    path = Path(ws.config.train.replay).expanduser()
    path = path if path.is_absolute() else ws.root / path
    if not path.is_file():
        raise VocabdError(f"{path}: replay manifest not found (train.replay in {ws.config_file})")
    return path


def _existing(path: Path | str) -> Path:
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise VocabdError(f"{path}: manifest not found")
    return path
