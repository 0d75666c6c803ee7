"""The chain's stages: synthesize -> mix -> train -> poll -> evaluate, phase 1 (mini) then phase 2 (full).

Plain synchronous functions, one per stage of `vocabd.chain.spec`, each returning a `StageOutcome` with
its typed result; `Pipeline` runs one (recording its result, time and failure in the chain record) for
either driver (`vocabd.chain.driver`: the daemon's queue, or a foreground run). Torch-free: synthesis,
training and evaluation run as `vocabd` subprocesses.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from vocabd.chain import record as state
from vocabd.chain import spec
from vocabd.chain.failure import write_failed
from vocabd.chain.spec import StageFailed, StageOutcome, TransientError
from vocabd.errors import VocabdError
from vocabd.log import get_logger
from vocabd.longform.pending import outcome_lines, pending, split_pending
from vocabd.split import HELD_OUT_PERCENT, SENTENCE_MIN_WORDS
from vocabd.workspace import LONG_PIECES, MY_VOICE_EVAL, MY_VOICE_TRAIN, Workspace, phase_name

log = get_logger(__name__)


# starting ----------------------------------------------------------------------------------------

def start_chain(ws: Workspace) -> tuple[str, str, str]:
    """Begin a chain for the workspace's current material; a chain still running is superseded."""
    material = snapshot_material(ws)
    if not material.jargon and not material.my_voice_train and not material.long_recordings:
        raise VocabdError(
            f"nothing to train on in {ws.data}: drop a jargon list (.txt) or recordings with transcripts "
            f"into {ws.inbox}")
    if not material.long_recordings:  # what long recordings give is known once the chain has cut them
        require_recordings_alone(ws, material)
    old = state.current(ws)
    if old is not None and old.live:
        _supersede(ws, old)
    name = _new_name(ws, old)
    state.new_chain(ws, name, material)
    log.info("chain_started", name=name, **asdict(material))
    return name, spec.PHASES[0], spec.FIRST_STAGE


def snapshot_material(ws: Workspace) -> state.Material:
    return state.Material(
        jargon=ws.has_jargon,
        my_voice_train=_count_rows(ws.manifest(MY_VOICE_TRAIN)),
        my_voice_eval=_count_rows(ws.manifest(MY_VOICE_EVAL)),
        voice_ref=ws.voice_ref.is_file(),
        long_recordings=len(pending(ws)),
    )


def require_recordings_alone(ws: Workspace, material: state.Material, split_error: str | None = None) -> None:
    """Without a jargon list the chain trains and measures on the user's recordings alone: it needs enough
    on the training side and one held out. Raises, naming the recordings and what to do, when not."""
    from vocabd.training.data import MIN_TRAIN_CLIPS

    if material.jargon:
        return
    fewest = MIN_TRAIN_CLIPS + 1  # the trainer keeps one back to watch its dev WER
    if material.my_voice_train < fewest:
        problem = f"{material.my_voice_train} recording(s) to train on (at least {fewest} are needed)"
    elif not material.my_voice_eval:
        problem = (f"no held-out recording to measure the adapter on ({HELD_OUT_PERCENT}% of the recordings of "
                   f"{SENTENCE_MIN_WORDS} words or more are held out, chosen by their transcript)")
    else:
        return
    long = outcome_lines(ws)
    raise VocabdError(
        f"no jargon list and {problem} in {ws.data}"
        + (f"; the splitting worker failed ({split_error})" if split_error else "")
        + ("; your long recordings: " + "; ".join(long) if long else "")
        + f". Drop more recordings with their transcripts, or a jargon list (.txt), into {ws.inbox}: everything "
        f"taken in so far is kept" + (f" (data/{LONG_PIECES} lists every piece and why one was left out)" if long else ""))


def _count_rows(path: Path) -> int:
    if not path.is_file():
        return 0
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def _new_name(ws: Workspace, old: state.Chain | None) -> str:
    base = "adapt-" + datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    name, n = base, 1
    while (old and old.name == name) or ws.run_dir(name).exists() or ws.run_dir(phase_name(name, "mini")).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def _supersede(ws: Workspace, old: state.Chain) -> None:
    """New material restarts the chain; the old chain's training process is stopped (only when proven to
    be that run's trainer: the recorded pid is data from the workspace, not proof)."""
    from vocabd.training.status import is_trainer

    state.update(ws, old.name, state="superseded")
    pid = old.train_pid
    run_dir = ws.run_dir(phase_name(old.name, old.phase))
    if pid and old.stage in ("train", "poll"):
        if is_trainer(run_dir, pid):
            os.kill(pid, signal.SIGTERM)
            log.info("training_stopped", pid=pid, run=run_dir.name)
        else:
            log.warning("training_not_stopped", pid=pid, run=run_dir.name,
                        reason="the recorded pid is not this run's training process")
    log.info("chain_superseded", name=old.name, stage=old.stage)


# running -----------------------------------------------------------------------------------------

StageFunction = Callable[[Workspace, str, str], StageOutcome]


class Pipeline:
    """What the drivers run: `start` begins a chain, `run` one stage of it. Tests hand the drivers another
    Pipeline (one whose stages only log) to drive the real queue and daemon in seconds."""

    def start(self, ws: Workspace) -> tuple[str, str, str]:
        """A new chain on the workspace's material: (name, phase, stage) of its first stage."""
        return start_chain(ws)

    def run(self, ws: Workspace, name: str, phase: str, stage: str) -> StageOutcome:
        return run_stage(ws, name, phase, stage)


PIPELINE = Pipeline()


def run_stage(ws: Workspace, name: str, phase: str, stage: str) -> StageOutcome:
    """Run one stage of chain `name`; returns what runs next. Raises TransientError or StageFailed, and
    StateCorrupt when the chain record cannot be read (never taken for a finished chain)."""
    policy = spec.check(phase, stage)
    chain = state.current(ws)
    if chain is None or chain.name != name or not chain.live:
        log.info("stage_skipped_stale_chain", name=name, phase=phase, stage=stage,
                 current=chain.name if chain else None, state=chain.state if chain else None)
        return StageOutcome(None)
    start = time.time()
    try:
        outcome = STAGE_FUNCTIONS[stage](ws, name, phase)
    except TransientError as e:
        _transient(ws, chain, phase, policy, e)
        raise
    except state.StateCorrupt:
        raise
    except Exception as e:  # anything else is final for this chain: say so in FAILED.md
        path = record_failure(ws, name, phase, stage, e)
        raise StageFailed(f"{phase}/{stage} failed: {e} (see {path})", path) from e
    finally:
        state.record_timing(ws, name, phase, stage, start, time.time())
    if outcome.result is not None:
        _store_result(ws, name, phase, stage, outcome.result)
    if not _still_current(ws, name):  # new material superseded this chain while the stage ran
        log.info("chain_superseded_during_stage", name=name, phase=phase, stage=stage)
        return StageOutcome(None)
    return outcome


def _still_current(ws: Workspace, name: str) -> bool:
    chain = state.current(ws)
    return chain is not None and chain.name == name and chain.live


def _transient(ws: Workspace, chain: state.Chain, phase: str, policy: spec.Stage, error: TransientError) -> None:
    """The stage's `max_attempts`-th transient error fails the chain."""
    log.warning("stage_transient_error", name=chain.name, phase=phase, stage=policy.name, attempt=chain.attempt,
                error=str(error))
    if chain.attempt >= policy.max_attempts:
        path = record_failure(ws, chain.name, phase, policy.name, error)
        raise StageFailed(f"{phase}/{policy.name} failed {chain.attempt} times: {error} (see {path})", path) from error


def record_failure(ws: Workspace, name: str, phase: str, stage: str, error: BaseException) -> Path:
    """Write FAILED.md into the phase's run folder and name it in the record (the driver marks the chain
    failed: nothing runs after)."""
    experiment = phase_name(name, phase)
    path = write_failed(ws, experiment, phase, stage, error)
    state.update(ws, name, failed=str(path), error=str(error))
    log.error("stage_failed", name=name, phase=phase, stage=stage, error=str(error), failed_file=str(path))
    return path


def _store_result(ws: Workspace, name: str, phase: str, stage: str, result: Any) -> None:
    """Keep the stage's typed result in the record, under its phase."""
    with state.editing(ws) as record:
        if record.chain is None or record.chain.name != name:
            return
        setattr(record.chain.results.setdefault(phase, state.PhaseResults()), stage, result)


# the stages --------------------------------------------------------------------------------------

SYNTHESIS_TIMEOUT_S = 4 * 3600  # a cloned voice on a CPU renders ~90x slower than real time


def heldout_count(ws: Workspace) -> int:
    return max(8, min(40, ws.config.full.clips // 10))


def split_long_recordings(ws: Workspace, name: str) -> str | None:
    """Recordings over 30 s become pieces before anything reads the recordings. The pieces are this chain's
    material (their recordings were taken in before it started), so they are no reason for another chain.
    Returns the splitting worker's error, if it failed (its recordings wait for the next chain)."""
    summary = split_pending(ws)
    if summary is None:
        return None
    state.cover_own_material(ws, name)
    return summary.get("error")


def stage_synthesize(ws: Workspace, name: str, phase: str) -> StageOutcome:
    """Speech is rendered in a worker process (vocabd/synthesis/worker.py): the daemon stays light."""
    from vocabd.child.worker import WorkerKilled, run_worker
    from vocabd.codec import decode, encode
    from vocabd.synthesis.results import SynthesisResult
    from vocabd.synthesis.worker import SynthesisRequest
    from vocabd.training.phase import phase_config

    split_error = split_long_recordings(ws, name)
    require_recordings_alone(ws, snapshot_material(ws), split_error)
    request = SynthesisRequest(str(ws.root), phase, phase_config(ws, phase).clips, heldout_count(ws))
    try:
        reply = run_worker("vocabd.synthesis.worker", encode(request), cwd=ws.root, timeout=SYNTHESIS_TIMEOUT_S,
                           env={"VOCABD_HOME": str(ws.root)}, log_file=ws.data / "synthetic" / "worker.log")
    except WorkerKilled as e:
        raise TransientError(f"synthesis: {e}") from e
    return spec.advance(phase, "synthesize", decode(SynthesisResult, reply, "the synthesis worker's reply"))


def stage_mix(ws: Workspace, name: str, phase: str) -> StageOutcome:
    from vocabd.synthesis.mix import mix

    return spec.advance(phase, "mix", mix(ws, phase))


def stage_train(ws: Workspace, name: str, phase: str) -> StageOutcome:
    from vocabd.training.phase import launch_training
    from vocabd.training.status import RunBusyError
    from vocabd.training.watch import poll_seconds

    try:
        pid = launch_training(ws, phase_name(name, phase), phase)
    except RunBusyError as e:  # a previous process of this run is still letting go of its lock
        raise TransientError(str(e)) from e
    state.update(ws, name, train_pid=pid)
    outcome = spec.advance(phase, "train")
    outcome.delay = poll_seconds()
    return outcome


def stage_poll(ws: Workspace, name: str, phase: str) -> StageOutcome:
    from vocabd.training.watch import poll_seconds, poll_training

    chain = state.current(ws)
    resumes = dict(chain.resumes) if chain else {}
    result = poll_training(ws, phase_name(name, phase), phase, resumes.get(phase, 0), spec.stage("poll").max_resumes)
    changes: dict[str, Any] = {"progress": state.Progress(result.step, result.max_steps, result.eta_seconds)}
    if result.resumed:  # the relaunched trainer's pid is the one a supersede may stop
        changes.update(resumes={**resumes, phase: resumes.get(phase, 0) + 1}, train_pid=result.pid)
    state.update(ws, name, **changes)
    return spec.advance(phase, "poll") if result.finished else spec.again("poll", poll_seconds())


def stage_evaluate(ws: Workspace, name: str, phase: str) -> StageOutcome:
    from vocabd.chain.gate import decide_from_results
    from vocabd.evaluation.runner import EvaluationCrashed, evaluate_run
    from vocabd.general.pool import yardstick_kind
    from vocabd.report import build_report, print_table, write_report

    experiment = phase_name(name, phase)
    state.update(ws, name, evaluate_started=time.time())
    try:
        results = evaluate_run(ws, experiment)
    except EvaluationCrashed as e:
        raise TransientError(str(e)) from e
    last = phase == spec.PHASES[-1]
    gate = decide_from_results(results, ws.config.gate, yardstick_kind(ws)) if last else None
    report = build_report(ws, experiment, phase, results, gate, _timings_so_far(ws, phase))
    path = write_report(ws, report)
    if last:
        from vocabd.corrections.report import add_to_report

        add_to_report(ws, ws.run_dir(experiment), path)
    print_table(report)
    state.update(ws, name, last_report=str(path), **({"gate": gate.reason} if gate else {}))
    result = state.EvaluateResult(report=str(path), primary=results.primary.score(),
                                  safety=results.safety.score() if results.safety else None, gate=gate)
    if gate is not None and gate.promote:
        promote(ws, name, experiment, report, result)
    elif last:
        log.warning("adapter_kept_out", experiment=experiment, reason=gate.reason if gate else "")
    return spec.advance(phase, "evaluate", result)


def _timings_so_far(ws: Workspace, phase: str) -> dict[str, dict[str, state.StageTime]]:
    """The chain's stage times with this evaluate stage's time up to now, so the report lists every stage."""
    chain = state.current(ws)
    if chain is None:
        return {}
    timings = {p: dict(stages) for p, stages in chain.timings.items()}
    if chain.evaluate_started:
        timings.setdefault(phase, {})["evaluate"] = state.StageTime(
            start=chain.evaluate_started, runs=1, wall_s=round(time.time() - chain.evaluate_started, 2))
    return timings


def promote(ws: Workspace, name: str, experiment: str, report: dict[str, Any], result: state.EvaluateResult) -> None:
    """Make the run's best adapter the workspace's active model (`data/active.json`)."""
    from vocabd.asr.active import write_active

    chain = state.current(ws)
    primary, safety = result.primary, result.safety
    write_active(ws, {
        "name": name, "experiment": experiment, "model": report["model"], "base_model": report.get("base_model"),
        "adapter": str(Path("runs") / experiment / "best"), "adapter_path": str(ws.run_dir(experiment) / "best"),
        "promoted": state.now_iso(), "trained_from": chain.started if chain else None,
        "material": asdict(chain.material) if chain else None,
        "primary_wer": primary.adapter_wer_normalized, "primary_wer_raw": primary.adapter_wer,
        "base_primary_wer": primary.base_wer_normalized,
        "safety_wer": safety.adapter_wer_normalized if safety else None,
        "base_safety_wer": safety.base_wer_normalized if safety else None,
        "report": result.report,
    })
    log.info("adapter_promoted", experiment=experiment, adapter=str(ws.run_dir(experiment) / "best"))


STAGE_FUNCTIONS: dict[str, StageFunction] = {
    "synthesize": stage_synthesize, "mix": stage_mix, "train": stage_train, "poll": stage_poll,
    "evaluate": stage_evaluate,
}
