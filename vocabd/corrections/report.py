"""The run report's "Your corrections" section: which corrected transcripts the new adapter now gets right."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vocabd.corrections.store import read_kept
from vocabd.files import write_text
from vocabd.log import get_logger
from vocabd.workspace import CORRECTIONS, Workspace

log = get_logger("vocabd.corrections")



def corrections_manifest(ws: Workspace) -> Path | None:
    """`data/corrections.jsonl`: every corrected kept transcript as a clip (None when there is none)."""
    rows = [r for r in read_kept(ws) if r.get("correction")]
    if not rows:
        return None
    path = ws.data / CORRECTIONS
    write_text(path, "".join(json.dumps({"audio": r["audio"], "text": r["correction"], "id": r["id"],
                                         "duration": r["duration"], "source": "real"}, ensure_ascii=False) + "\n"
                                 for r in rows))
    return path


def check_corrections(ws: Workspace, adapter: Path) -> list[dict[str, Any]]:
    """Per correction: what the model said when it was kept, what the adapter says now, and whether that is
    the corrected text (normalized: case, punctuation and number words aside)."""
    from vocabd.scoring.metrics import normalize
    from vocabd.evaluation.runner import evaluate_model

    manifest = corrections_manifest(ws)
    if manifest is None:
        return []
    result = evaluate_model(ws, manifest, adapter)
    now = {u.id: u.hyp for u in result.utterances}
    return [{"id": r["id"], "correction": r["correction"], "before": r["hypothesis"], "now": now.get(r["id"], ""),
             "right": normalize(now.get(r["id"], "")) == normalize(r["correction"])}
            for r in read_kept(ws) if r.get("correction")]


def render_corrections(checked: list[dict[str, Any]]) -> str:
    right = sum(c["right"] for c in checked)
    lines = ["", "## Your corrections", "",
             f"The new adapter gets {right} of {len(checked)} corrected transcripts right (most of them it trained on).",
             "", "| id | corrected | heard when kept | new adapter | right |", "| --- | --- | --- | --- | --- |"]
    for c in checked:
        cells = [c["id"], c["correction"], c["before"], c["now"], "yes" if c["right"] else "no"]
        lines.append("| " + " | ".join(str(x).replace("|", "\\|") for x in cells) + " |")
    return "\n".join(lines) + "\n"


def add_to_report(ws: Workspace, run_dir: Path, report_md: Path) -> list[dict[str, Any]]:
    """Append the section to the run's report.md and write corrections.json beside it; never fails the chain."""
    try:
        checked = check_corrections(ws, run_dir / "best")
    except Exception as e:  # noqa: BLE001 - the report and the gate stand without this section
        log.warning("corrections_check_failed", error=str(e))
        return []
    if checked:
        (run_dir / "corrections.json").write_text(json.dumps(checked, indent=1, ensure_ascii=False), encoding="utf-8")
        with report_md.open("a", encoding="utf-8") as out:
            out.write(render_corrections(checked))
        log.info("corrections_checked", right=sum(c["right"] for c in checked), of=len(checked))
    return checked
