"""`runs/<experiment>/FAILED.md` for a chain stage: what to do next, per stage (format: vocabd/failure.py)."""

from __future__ import annotations

from pathlib import Path

from vocabd.failure import write_failed_note
from vocabd.workspace import Workspace

NEXT_STEPS = {
    "synthesize": (
        "Check what the error names: the jargon list (`data/jargon.txt`), the voice sample (`data/voice_ref.wav`) "
        "or, without a jargon list, your recordings (`data/long_pieces.json` says what each long one gave). Drop "
        "a corrected file or more recordings into `inbox/` (the daemon restarts the chain) or run "
        "`vocabd synthesize --phase mini` to reproduce a synthesis problem in a terminal."
    ),
    "mix": (
        "A manifest in `data/` has bad rows (listed above). Fix or remove the recordings they name and drop "
        "them into `inbox/` again, or run `vocabd mix` to reproduce the problem."
    ),
    "train": (
        "The training process could not start or crashed. Read the run's `stdout.log`, then resume it with "
        "`vocabd run-experiment NAME --resume` or restart the whole chain with `vocabd run --foreground`."
    ),
    "poll": (
        "The training process failed or stalled (see the log tail). Resume it with "
        "`vocabd run-experiment NAME --resume`, then `vocabd run --foreground` continues the chain."
    ),
    "evaluate": (
        "Evaluation of the base model or the adapter failed. Run `vocabd evaluate MANIFEST --adapter "
        "runs/NAME/best --json` to reproduce it; the adapter itself is kept in `runs/NAME/best/`."
    ),
}


def write_failed(ws: Workspace, experiment: str, phase: str, stage: str, error: BaseException) -> Path:
    """Write FAILED.md into the experiment's run folder and return its path."""
    run_dir = ws.run_dir(experiment)
    run_dir.mkdir(parents=True, exist_ok=True)
    advice = NEXT_STEPS.get(stage, "See the error above.").replace("NAME", experiment)
    ended = "phase 1, the chain stopped before phase 2" if phase == "mini" else "phase 2"
    return write_failed_note(run_dir / "FAILED.md", f"{experiment}: phase {phase} failed at stage `{stage}`",
                             [f"phase: {phase} ({ended})", f"stage: {stage}"], error, advice,
                             [run_dir / "stdout.log", run_dir / "log.jsonl", ws.log_file])
