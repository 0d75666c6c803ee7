"""The `train` stage: start the phase's experiment as its own background process (torch-free here)."""

from __future__ import annotations

from pathlib import Path

from vocabd.config import PhaseConfig
from vocabd.errors import VocabdError
from vocabd.log import get_logger
from vocabd.workspace import Workspace

log = get_logger(__name__)


def phase_config(ws: Workspace, phase: str) -> PhaseConfig:
    return ws.config.mini if phase == "mini" else ws.config.full


def mixed_manifest(ws: Workspace, phase: str) -> Path:
    return ws.manifest("mixed_train_mini" if phase == "mini" else "mixed_train")


def replay_manifest(ws: Workspace) -> Path | None:
    """The configured general-speech replay pool (relative paths taken from the workspace root), else the
    default pool's replay part (vocabd.general), else None."""
    if not ws.config.train.replay:
        from vocabd.general.pool import pool_manifest

        return pool_manifest(ws, "replay")
    path = Path(ws.config.train.replay).expanduser()
    path = path if path.is_absolute() else ws.root / path
    if not path.is_file():
        raise VocabdError(f"{path}: replay manifest not found (train.replay in {ws.config_file})")
    return path


def launch_training(ws: Workspace, experiment: str, phase: str) -> int:
    """Launch (or find already running) the experiment; returns the training process's pid.

    Idempotent, so a daemon restarted mid-stage can run it again: a live run is left alone, a
    finished one is not redone, and a run that got as far as writing its config is resumed from its
    last checkpoint (one killed before that simply starts again).
    """
    from vocabd.training.status import load_status, read_status

    run_dir = ws.run_dir(experiment)
    stored = load_status(run_dir)
    if stored is not None:
        current = read_status(run_dir, ws.config.train.stall_seconds)
        if current.state in ("running", "finished"):
            log.info("training_already_" + current.state, experiment=experiment, pid=current.pid)
            return current.pid or 0
    manifest = mixed_manifest(ws, phase)
    if not manifest.is_file():
        raise VocabdError(f"{manifest}: training manifest missing (the mix stage did not write it)")
    cfg = phase_config(ws, phase)
    replay = replay_manifest(ws)
    pid = _launch(
        ws, experiment, manifest, max_steps=cfg.max_steps, eval_interval=cfg.eval_interval,
        replay=replay, replay_ratio=ws.config.train.replay_ratio if replay else None,
        resume=(run_dir / "config.json").is_file(),
    )
    log.info("training_launched", experiment=experiment, pid=pid, steps=cfg.max_steps, manifest=str(manifest))
    return pid


def _launch(ws: Workspace, experiment: str, manifest: Path, **kwargs) -> int:
    try:
        from vocabd.training.status import launch_experiment
    except ImportError:
        from vocabd.training.launch import launch_experiment
    return launch_experiment(ws, experiment, manifest, **kwargs)
