"""The job chain: synthesize -> mix -> train -> poll -> evaluate, phase 1 (mini) then phase 2 (full).

Plain synchronous functions: the daemon's Huey tasks and `vocabd run --foreground` both call
`run_stage` and enqueue (or run) whatever `StageOutcome` names next. Torch-free: training and
evaluation run as `vocabd` subprocesses. The chain's progress lives in `data/chain.json`, written
before and after every stage, so a daemon restarted mid-chain continues where it was.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from vocabd.errors import VocabdError
from vocabd.jobs import state
from vocabd.jobs.failure import write_failed
from vocabd.log import get_logger
from vocabd.workspace import MY_VOICE_EVAL, MY_VOICE_TRAIN, Workspace

log = get_logger(__name__)

STAGES = ("synthesize", "mix", "train", "poll", "evaluate")
PHASES = ("mini", "full")
MAX_TRANSIENT = 3  # retries of one stage before a transient error counts as a failure


class TransientError(VocabdError):
    """Worth retrying (a killed subprocess, a busy lock): the daemon re-runs the stage."""


class StageFailed(VocabdError):
    """The stage failed for good: FAILED.md is written and the chain stops."""

    def __init__(self, message: str, failed_file: Path | None = None):
        super().__init__(message)
        self.failed_file = failed_file


@dataclass
class StageOutcome:
    next_stage: str | None  # stage to enqueue next, None = chain ends for this phase
    next_phase: str | None = None  # "full" after a passed mini evaluate, else None
    delay: float = 0.0  # seconds before next (poll re-schedules itself with a delay)


def experiment_name(name: str, phase: str) -> str:
    return f"{name}_mini" if phase == "mini" else name


# starting ----------------------------------------------------------------------------------------

def start_chain(ws: Workspace) -> tuple[str, str, str]:
    """Begin a chain for the workspace's current material; a chain still running is superseded."""
    material = snapshot_material(ws)
    if not material["jargon"] and not material["my_voice_train"]:
        raise VocabdError(
            f"nothing to train on in {ws.data}: drop a jargon list (.txt) or recordings with transcripts "
            f"into {ws.inbox}")
    old = state.read_chain(ws)
    if old and old.get("state") in state.LIVE_STATES:
        _supersede(ws, old)
    name = _new_name(ws, old)
    state.new_chain(ws, name, material)
    log.info("chain_started", name=name, **material)
    return name, "mini", "synthesize"


def snapshot_material(ws: Workspace) -> dict[str, Any]:
    jargon = ws.data / "jargon.txt"
    return {
        "jargon": jargon.is_file() and jargon.stat().st_size > 0,
        "my_voice_train": _count_rows(ws.manifest(MY_VOICE_TRAIN)),
        "my_voice_eval": _count_rows(ws.manifest(MY_VOICE_EVAL)),
        "voice_ref": (ws.data / "voice_ref.wav").is_file(),
    }


def _count_rows(path: Path) -> int:
    if not path.is_file():
        return 0
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def _new_name(ws: Workspace, old: dict[str, Any] | None) -> str:
    base = "adapt-" + datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    name, n = base, 1
    while (old and old.get("name") == name) or ws.run_dir(name).exists() or ws.run_dir(f"{name}_mini").exists():
        n += 1
        name = f"{base}-{n}"
    return name


def _supersede(ws: Workspace, old: dict[str, Any]) -> None:
    """New material restarts the chain; the old chain's training process is stopped (only when proven to
    be that run's trainer: the recorded pid is data from the workspace, not proof)."""
    from vocabd.training.status import is_trainer

    state.update_chain(ws, old["name"], state="superseded")
    pid = old.get("train_pid")
    run_dir = ws.run_dir(experiment_name(str(old["name"]), str(old.get("phase"))))
    if pid and old.get("stage") in ("train", "poll"):
        if is_trainer(run_dir, pid):
            os.kill(pid, signal.SIGTERM)
            log.info("training_stopped", pid=pid, run=run_dir.name)
        else:
            log.warning("training_not_stopped", pid=pid, run=run_dir.name,
                        reason="the recorded pid is not this run's training process")
    log.info("chain_superseded", name=old["name"], stage=old.get("stage"))


# running -----------------------------------------------------------------------------------------

def run_stage(ws: Workspace, name: str, phase: str, stage: str) -> StageOutcome:
    """Run one stage of chain `name`; returns what runs next. Raises TransientError or StageFailed."""
    if stage not in STAGES or phase not in PHASES:
        raise VocabdError(f"unknown stage {phase}/{stage} (stages: {', '.join(STAGES)}; phases: mini, full)")
    chain = state.read_chain(ws)
    if chain is None or chain.get("name") != name or chain.get("state") not in state.LIVE_STATES:
        log.info("stage_skipped_stale_chain", name=name, phase=phase, stage=stage,
                 current=chain.get("name") if chain else None, state=chain.get("state") if chain else None)
        return StageOutcome(None)
    state.update_chain(ws, name, phase=phase, stage=stage, state="running")
    _log_for(stage)("stage_started", name=name, phase=phase, stage=stage)
    start = time.time()
    try:
        outcome = STAGE_FUNCTIONS[stage](ws, name, phase)
    except TransientError as e:
        _transient(ws, name, phase, stage, e)
        raise
    except Exception as e:  # anything else is final for this chain: say so in FAILED.md
        path = record_failure(ws, name, phase, stage, e)
        raise StageFailed(f"{phase}/{stage} failed: {e} (see {path})", path) from e
    finally:
        state.record_timing(ws, name, phase, stage, start, time.time())
    if not _still_current(ws, name):  # new material superseded this chain while the stage ran
        log.info("chain_superseded_during_stage", name=name, phase=phase, stage=stage)
        return StageOutcome(None)
    _advance(ws, name, phase, stage, outcome)
    return outcome


def _still_current(ws: Workspace, name: str) -> bool:
    chain = state.read_chain(ws)
    return chain is not None and chain.get("name") == name and chain.get("state") in state.LIVE_STATES


def _transient(ws: Workspace, name: str, phase: str, stage: str, error: TransientError) -> None:
    chain = state.read_chain(ws) or {}
    key = f"{phase}.{stage}"
    attempts = {**chain.get("attempts", {}), key: chain.get("attempts", {}).get(key, 0) + 1}
    state.update_chain(ws, name, state="retrying", attempts=attempts, last_error=str(error))
    log.warning("stage_transient_error", name=name, phase=phase, stage=stage, attempt=attempts[key], error=str(error))
    if attempts[key] >= MAX_TRANSIENT:
        path = record_failure(ws, name, phase, stage, error)
        raise StageFailed(f"{phase}/{stage} failed {attempts[key]} times: {error} (see {path})", path) from error


def _advance(ws: Workspace, name: str, phase: str, stage: str, outcome: StageOutcome) -> None:
    if outcome.next_stage is None:
        state.update_chain(ws, name, state="done", finished=state.now_iso())
        log.info("chain_finished", name=name, phase=phase)
        return
    state.update_chain(ws, name, phase=outcome.next_phase or phase, stage=outcome.next_stage, state="queued")
    _log_for(stage)("stage_finished", name=name, phase=phase, stage=stage, next_stage=outcome.next_stage,
             next_phase=outcome.next_phase, delay=outcome.delay)


def _log_for(stage: str) -> Callable[..., Any]:
    """Polls repeat every few seconds for hours: they log at debug level."""
    return log.debug if stage == "poll" else log.info


def record_failure(ws: Workspace, name: str, phase: str, stage: str, error: BaseException) -> Path:
    """Write FAILED.md into the phase's run folder and mark the chain failed (nothing runs after)."""
    experiment = experiment_name(name, phase)
    path = write_failed(ws, experiment, phase, stage, error)
    state.update_chain(ws, name, state="failed", failed=str(path), last_error=str(error), finished=state.now_iso())
    log.error("stage_failed", name=name, phase=phase, stage=stage, error=str(error), failed_file=str(path))
    return path


# the stages --------------------------------------------------------------------------------------

def heldout_count(ws: Workspace) -> int:
    return max(8, min(40, ws.config.full.clips // 10))


def stage_synthesize(ws: Workspace, name: str, phase: str) -> StageOutcome:
    from vocabd.jobs.evaluate import has_rows, primary_set
    from vocabd.jobs.synthesize import synthesize, synthesize_heldout
    from vocabd.general.pool import ensure_pool
    from vocabd.jobs.train import phase_config
    from vocabd.longform.pending import split_pending

    split_pending(ws)  # recordings over 30 s become pieces before anything reads the recordings
    result = synthesize(ws, phase, count=phase_config(ws, phase).clips)
    _store_result(ws, name, phase, "synthesize", result)
    ensure_pool(ws)
    primary, kind = primary_set(ws)
    if kind == "synthetic" and (phase == "mini" or not has_rows(primary)):
        path = synthesize_heldout(ws, heldout_count(ws))
        log.info("heldout_synthesized", manifest=str(path), reason="no held-out real recordings")
    return StageOutcome("mix")


def stage_mix(ws: Workspace, name: str, phase: str) -> StageOutcome:
    from vocabd.jobs.mix import mix

    _store_result(ws, name, phase, "mix", mix(ws, phase))
    return StageOutcome("train")


def stage_train(ws: Workspace, name: str, phase: str) -> StageOutcome:
    from vocabd.jobs.poll import poll_seconds
    from vocabd.jobs.train import launch_training
    from vocabd.training.status import RunBusyError

    try:
        pid = launch_training(ws, experiment_name(name, phase), phase)
    except RunBusyError as e:  # a previous process of this run is still letting go of its lock
        raise TransientError(str(e)) from e
    state.update_chain(ws, name, train_pid=pid)
    return StageOutcome("poll", delay=poll_seconds())


def stage_poll(ws: Workspace, name: str, phase: str) -> StageOutcome:
    from vocabd.jobs.poll import poll_seconds, poll_training

    chain = state.read_chain(ws) or {}
    resumes = chain.get("resumes", {}).get(phase, 0)
    result = poll_training(ws, experiment_name(name, phase), phase, resumes)
    progress = {"step": result.step, "max_steps": result.max_steps, "eta_seconds": result.eta_seconds}
    changes: dict[str, Any] = {"progress": progress}
    if result.resumed:
        changes["resumes"] = {**chain.get("resumes", {}), phase: resumes + 1}
        changes["train_pid"] = result.pid
    state.update_chain(ws, name, **changes)
    if result.finished:
        return StageOutcome("evaluate")
    return StageOutcome("poll", delay=poll_seconds())


def stage_evaluate(ws: Workspace, name: str, phase: str) -> StageOutcome:
    from vocabd.jobs.evaluate import EvaluationCrashed, evaluate_run
    from vocabd.jobs.gate import decide_from_results
    from vocabd.report import build_report, print_table, write_report

    experiment = experiment_name(name, phase)
    state.update_chain(ws, name, evaluate_started=time.time())
    try:
        results = evaluate_run(ws, experiment)
    except EvaluationCrashed as e:
        raise TransientError(str(e)) from e
    gate = decide_from_results(results, ws.config.gate) if phase == "full" else None
    report = build_report(ws, experiment, phase, results, gate.to_dict() if gate else None, _chain_so_far(ws, phase))
    path = write_report(ws, report)
    if phase == "full":
        from vocabd.corrections.report import add_to_report

        add_to_report(ws, ws.run_dir(experiment), path)
    print_table(report)
    state.update_chain(ws, name, last_report=str(path), **({"gate": gate.reason} if gate else {}))
    if phase == "mini":
        return StageOutcome("synthesize", next_phase="full")
    if gate is not None and gate.promote:
        promote(ws, name, experiment, report, path)
    else:
        log.warning("adapter_kept_out", experiment=experiment, reason=gate.reason if gate else "")
    return StageOutcome(None)


def _chain_so_far(ws: Workspace, phase: str) -> dict[str, Any]:
    """The chain with this evaluate stage's time up to now, so the report lists every stage."""
    chain = state.read_chain(ws) or {}
    timings = chain.get("timings", {})
    started = chain.get("evaluate_started")
    if started:
        timings.setdefault(phase, {})["evaluate"] = {"start": started, "runs": 1,
                                                     "wall_s": round(time.time() - started, 2)}
    return chain


def promote(ws: Workspace, name: str, experiment: str, report: dict[str, Any], report_path: Path) -> None:
    """Make the run's best adapter the workspace's active model (`data/active.json`)."""
    rows = {r["set"]: r for r in report["table"]}
    chain = state.read_chain(ws) or {}
    state.write_active(ws, {
        "name": name, "experiment": experiment, "model": ws.config.model.base,
        "adapter": str(Path("runs") / experiment / "best"), "adapter_path": str(ws.run_dir(experiment) / "best"),
        "promoted": state.now_iso(), "trained_from": chain.get("started"), "material": chain.get("material"),
        "primary_wer": rows["primary"]["adapter_wer_normalized"], "primary_wer_raw": rows["primary"]["adapter_wer"],
        "base_primary_wer": rows["primary"]["base_wer_normalized"],
        "safety_wer": rows["safety"]["adapter_wer_normalized"] if "safety" in rows else None,
        "base_safety_wer": rows["safety"]["base_wer_normalized"] if "safety" in rows else None,
        "report": str(report_path),
    })
    log.info("adapter_promoted", experiment=experiment, adapter=str(ws.run_dir(experiment) / "best"))


def _store_result(ws: Workspace, name: str, phase: str, stage: str, result: Any) -> None:
    data = result.to_dict() if hasattr(result, "to_dict") else result
    chain = state.read_chain(ws) or {}
    results = chain.get("results", {})
    results.setdefault(phase, {})[stage] = _jsonable(data)
    state.update_chain(ws, name, results=results)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


STAGE_FUNCTIONS: dict[str, Callable[[Workspace, str, str], StageOutcome]] = {
    "synthesize": stage_synthesize, "mix": stage_mix, "train": stage_train, "poll": stage_poll,
    "evaluate": stage_evaluate,
}


# status ------------------------------------------------------------------------------------------

def chain_state(ws: Workspace) -> dict[str, Any]:
    """For `vocabd status` and a restarting daemon: where the chain is, the active adapter, the last report.

    `resume` is `[name, phase, stage]` while the chain has work left: the stage to enqueue again.
    """
    chain = state.read_chain(ws) or {}
    current = chain.get("state", "none")
    name, phase, stage = chain.get("name"), chain.get("phase"), chain.get("stage")
    live = current in state.LIVE_STATES
    return {
        "name": name, "phase": phase, "stage": stage, "state": current,
        "experiment": experiment_name(name, phase) if name and phase else None,
        "started": _precise(chain.get("started_epoch")) or chain.get("started"),
        "updated": chain.get("updated"),
        "progress": _progress(ws, chain) if live else chain.get("progress"),
        "timings": chain.get("timings", {}), "failed": chain.get("failed"), "last_error": chain.get("last_error"),
        "active": state.read_active(ws), "last_report": _last_report(ws), "gate": chain.get("gate"),
        "general": _general_line(ws),
        "resume": [name, phase, stage] if live else None,
    }


def _general_line(ws: Workspace) -> str | None:
    from vocabd.general.pool import status_line

    return status_line(ws)


def _precise(epoch: float | None) -> str | None:
    """Millisecond ISO time: material ingested in the chain's first second must compare as older."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds")


def _progress(ws: Workspace, chain: dict[str, Any]) -> dict[str, Any] | None:
    if chain.get("stage") not in ("train", "poll"):
        return chain.get("progress")
    from vocabd.training.status import read_status

    try:
        status = read_status(ws.run_dir(experiment_name(chain["name"], chain["phase"])),
                             ws.config.train.stall_seconds)
    except VocabdError:
        return chain.get("progress")
    return {"step": status.step, "max_steps": status.max_steps, "eta_seconds": status.eta_seconds,
            "training": status.state}


def _last_report(ws: Workspace) -> str | None:
    reports = sorted(ws.runs.glob("*/report.md"), key=lambda p: p.stat().st_mtime) if ws.runs.is_dir() else []
    return str(reports[-1]) if reports else None
