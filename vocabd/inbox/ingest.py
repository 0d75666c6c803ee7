"""Take in what waits in inbox/ outside the daemon: `vocabd ingest`, `vocabd run --foreground`, and every
verb that reads the workspace's material (synthesize, mix, run-experiment and evaluate on its manifests).

The inbox rules themselves live in `vocabd.inbox.drops` (the daemon uses the same `handle`). While a
daemon holds the workspace or a chain stage is running, the inbox is theirs: a verb leaves it alone and
says so instead of taking files in behind their back (`vocabd.chain.lock.take_in_inbox_first`).
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape

from vocabd.inbox.drops import Outcome, handle, inbox_entries
from vocabd.workspace import MY_VOICE_EVAL, MY_VOICE_TRAIN, Workspace

COLOURS = {"done": "green", "duplicate": "yellow", "gone": "yellow", "waiting": "yellow"}
INGESTED_MANIFESTS = (MY_VOICE_TRAIN, MY_VOICE_EVAL)  # what ingest writes; the other manifests are derived


def ingest_inbox(ws: Workspace) -> list[Outcome]:
    """Handle everything waiting in inbox/ now (no settle wait: the person asking has finished dropping)."""
    return handle(ws, inbox_entries(ws))


def outcome_line(outcome: Outcome) -> str:
    """One plain line per drop: what it was, what happened, where it went."""
    names = ", ".join(p.name for p in outcome.drop.files)
    where = f" -> inbox/{outcome.moved[0].parent.name}/" if outcome.moved else ""
    return f"{outcome.status:<9} {names}{where}: {outcome.message}"


def print_outcomes(console: Console, outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        colour = COLOURS.get(outcome.status, "red")
        console.print(f"[{colour}]inbox[/{colour}] {escape(outcome_line(outcome))}", highlight=False,
                      soft_wrap=True)


def reads_ingested_material(ws: Workspace, manifest: Path | None) -> bool:
    """True for the manifests ingest writes (your recordings); derived ones need synthesize/mix again."""
    if manifest is None:
        return False
    return Path(manifest).resolve() in {ws.manifest(name).resolve() for name in INGESTED_MANIFESTS}


def note_derived_manifest(ws: Workspace, manifest: Path, console: Console | None = None) -> None:
    """A derived manifest (synthetic, mixed) does not hold what waits in inbox/: say how to bring it in."""
    waiting = inbox_entries(ws)
    if waiting and Path(manifest).resolve().is_relative_to(ws.data.resolve()):
        (console or Console(stderr=True)).print(
            f"[yellow]{len(waiting)} file(s) wait in {ws.inbox} and are not in {Path(manifest).name}: "
            "`vocabd ingest`, then `vocabd synthesize` and `vocabd mix` (or `vocabd run --foreground` for all of it)",
            highlight=False, soft_wrap=True)
