"""A run's report: `report.md`, `report.json` and `wer.png` in `runs/<experiment>/`, plus the console table.

Torch-free: it reads the evaluation results, the run folder and the workspace's manifests.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from vocabd.asr.identity import ModelIdentity, read_identity
from vocabd.clock import now_iso
from vocabd.codec import encode
from vocabd.evaluation.evaluate import EvalResult
from vocabd.evaluation.runner import RunEvaluation, SetPair
from vocabd.evaluation.uncertainty import Spread, paired_change, wer_spread
from vocabd.files import read_json, read_jsonl, write_json, write_text
from vocabd.log import get_logger
from vocabd.longform.pending import outcome_lines
from vocabd.workspace import (MIXED_TRAIN, MY_VOICE_EVAL, MY_VOICE_TRAIN, SYNTHETIC_EVAL, SYNTHETIC_TRAIN,
                              Workspace)

log = get_logger(__name__)

SHOWN_TRANSCRIPTS = 25
DEV_WER_KEYS = ("dev_wer", "eval_wer", "wer")
SYMBOLS = re.compile(r"[@#/_&%$+=~\\]|\b[A-Z]{2,}\b")  # symbols and acronyms such as WER


# data --------------------------------------------------------------------------------------------

def describe_data(ws: Workspace, phase: str) -> dict[str, Any]:
    """What the adapter was trained and measured on, including the synthesis backend and cloning."""
    synthetic = read_jsonl(ws.phase_manifest(SYNTHETIC_TRAIN, phase))
    heldout = read_jsonl(ws.manifest(SYNTHETIC_EVAL))
    mixed = read_jsonl(ws.phase_manifest(MIXED_TRAIN, phase))
    real_train, real_eval = len(read_jsonl(ws.manifest(MY_VOICE_TRAIN))), len(read_jsonl(ws.manifest(MY_VOICE_EVAL)))
    return {
        "real_train_clips": real_train,
        "real_eval_clips": real_eval,
        "real_recordings": real_train + real_eval > 0,
        "long_recordings": outcome_lines(ws),
        "jargon": ws.has_jargon,
        "synthetic_clips": len(synthetic),
        "synthesis_backends": dict(Counter(_backend(r) for r in synthetic)),
        "synthesis_voices": sorted({str(r.get("speaker", "")) for r in synthetic} - {""}),
        "voice_cloned": any(bool(r.get("cloned")) for r in synthetic),
        "heldout_voices": sorted({str(r.get("speaker", "")) for r in heldout} - {""}),
        "mixed_clips": len(mixed),
        "mixed_sources": dict(Counter(str(r.get("source", "real")) for r in mixed)),
        **_replay(ws),
    }


def _replay(ws: Workspace) -> dict[str, Any]:
    """The replay pool the trainer got (the user's own, or the default pool's) and what the default pool is."""
    from vocabd.general.pool import describe, pool_manifest, read_pool, yardstick_kind

    pool = read_pool(ws)
    replay = ws.config.train.replay or pool_manifest(ws, "replay")
    return {"replay": str(replay) if replay else None,
            "replay_ratio": ws.config.train.replay_ratio if replay else 0.0,
            "general_pool": describe(pool) if pool else None, "yardstick_kind": yardstick_kind(ws)}


def _backend(row: dict[str, Any]) -> str:
    return str(row.get("backend") or str(row.get("speaker", "unknown")).split(":")[0] or "unknown")


def describe_training(run_dir: Path) -> dict[str, Any]:
    config = read_json(run_dir / "config.json") or {}
    status = read_json(run_dir / "status.json") or {}
    best = read_json(run_dir / "best" / "best.json") or {}
    keep = ("model", "max_steps", "max_epochs", "eval_interval", "lr", "lora_r", "lora_alpha", "use_dora", "targets",
            "batch_size", "replay_ratio")
    return {
        "config": {k: config[k] for k in keep if k in config},
        "steps_done": status.get("step"),
        "seconds_per_step": status.get("seconds_per_step"),
        "best_step": best.get("step", status.get("best_step")),
        "best_dev_wer": status.get("best_dev_wer"),
        "curve": wer_curve(run_dir / "log.jsonl"),
    }


def wer_curve(log_file: Path) -> list[dict[str, float]]:
    """(step, dev WER[, replay-dev WER]) from the run's log.jsonl eval events."""
    points = []
    for event in read_jsonl(log_file):
        key = next((k for k in DEV_WER_KEYS if isinstance(event.get(k), (int, float))), None)
        if key is None or "step" not in event:
            continue
        point = {"step": event["step"], "dev_wer": event[key]}
        replay = next((event[k] for k in event if k.startswith("replay") and k.endswith("wer")), None)
        if isinstance(replay, (int, float)):
            point["replay_wer"] = replay
        points.append(point)
    return points


# transcripts -------------------------------------------------------------------------------------

def interesting(ref: str, terms: list[str]) -> bool:
    """A clip with a jargon term (as a whole word, any case) or a symbol: the ones worth reading side by side."""
    return bool(SYMBOLS.search(ref)) or any(
        re.search(rf"(?<!\w){re.escape(t)}(?!\w)", ref, re.IGNORECASE) for t in terms if t)


def side_by_side(pair: SetPair, terms: list[str]) -> list[dict[str, str]]:
    adapted = {u.audio: u for u in pair.adapter.utterances}
    rows = []
    for u in pair.base.utterances:
        other = adapted.get(u.audio)
        if other is not None and interesting(u.ref, terms):
            rows.append({"ref": u.ref, "base": u.hyp, "adapter": other.hyp})
    return rows


# building ----------------------------------------------------------------------------------------

def build_report(
    ws: Workspace, experiment: str, phase: str, results: RunEvaluation, gate: Any, timings: dict[str, Any],
) -> dict[str, Any]:
    """The report as report.json holds it; `gate` is the GateDecision (None in phase 1), `timings` the chain's."""
    terms = sorted(results.primary.base.terms)
    data = describe_data(ws, phase)
    base = read_identity(ws.run_dir(experiment) / "best")  # what the adapter was trained on and evaluated with
    report = {
        "experiment": experiment, "phase": phase, "created": now_iso(),
        "model": base.name if base else ws.config.model.base, "base_model": base.to_dict() if base else None,
        "adapter": str(ws.run_dir(experiment) / "best"),
        "data": data, "training": describe_training(ws.run_dir(experiment)),
        "table": wer_table(results), "terms": term_table(results.primary),
        "transcripts": {name: side_by_side(pair, terms) for name, pair in results.pairs().items()},
        "gate": encode(gate), "timings": encode(timings),
        "notes": notes(data, results, phase),
    }
    return report


def wer_table(results: RunEvaluation) -> list[dict[str, Any]]:
    """One row per set, each normalized WER with its clips, words and 95% bootstrap interval, and the
    adapter's change measured on the same clips."""
    rows = []
    for name, pair in results.pairs().items():
        base, adapter = pair.base, pair.adapter
        base_spread, adapter_spread = wer_spread(base), wer_spread(adapter)
        rows.append({
            "set": name, "manifest": pair.manifest, "kind": pair.kind,
            "clips": base.clips, "words": base_spread.words,
            "base_wer": base.wer, "adapter_wer": adapter.wer,
            "base_wer_normalized": base.wer_normalized, "adapter_wer_normalized": adapter.wer_normalized,
            "base_raw_interval": _interval(wer_spread(base, normalized=False)),
            "adapter_raw_interval": _interval(wer_spread(adapter, normalized=False)),
            "base_interval": _interval(base_spread), "adapter_interval": _interval(adapter_spread),
            "change": encode(paired_change(base, adapter)),
            "base_term_recall": base.term_recall, "adapter_term_recall": adapter.term_recall,
            "base_false_alarms": _false_alarms(base), "adapter_false_alarms": _false_alarms(adapter),
        })
    return rows


def _false_alarms(result: EvalResult) -> int:
    return sum(s.false_alarms for s in result.terms.values())


def term_table(pair: SetPair) -> list[dict[str, Any]]:
    adapter = pair.adapter.terms
    return [
        {"term": term, "expected": stats.expected, "base_recall": stats.recall,
         "adapter_recall": adapter[term].recall if term in adapter else None,
         "adapter_false_alarms": adapter[term].false_alarms if term in adapter else 0}
        for term, stats in sorted(pair.base.terms.items())
    ]


def notes(data: dict[str, Any], results: RunEvaluation, phase: str) -> list[str]:
    out = []
    backends = ", ".join(f"{b} ({n} clips)" for b, n in data["synthesis_backends"].items()) or "none"
    if data["jargon"]:
        out.append(f"Synthetic speech was made with: {backends}. "
                   + ("The user's voice was cloned." if data["voice_cloned"] else
                      "The voice was NOT cloned (no voice-cloning model was available or no voice sample was given)."))
    else:
        out.append("No jargon list: no synthetic speech was made; the adapter was trained on your recordings alone.")
    if not data["real_recordings"]:
        voices = ", ".join(data["heldout_voices"]) or "another synthetic voice"
        out.append(("Your long recordings gave no piece to use (see Data below and data/long_pieces.json), so no "
                    "real recordings were available" if data["long_recordings"] else
                    "No real recordings were available")
                   + ": the adapter was trained on synthetic speech"
                   + (" plus general-speech replay" if data["replay"] else "")
                   + f", and the primary WER is measured on held-out synthetic clips in a voice not used for "
                   f"training ({voices}). It shows the jargon was learned, not how well your own voice is recognized.")
    elif results.primary.kind == "synthetic":
        out.append("No held-out real recordings: the primary WER is measured on held-out synthetic clips.")
    safety = results.safety
    if not safety:
        out.append("No safety yardstick of any kind (no data/safety_eval.jsonl and no default general-speech pool): "
                   "general speech was not checked, so the gate does not promote this adapter unless "
                   "[gate] require_safety = false.")
    elif safety.describe:
        out.append(f"Safety yardstick: {safety.describe}")
    if data.get("yardstick_kind") == "SYNTHETIC ONLY":
        out.append("The safety yardstick is SYNTHETIC speech only: training on synthetic speech improves it, so it "
                   "cannot show harm to real voices. Install vocabd's dependencies (moonshine-voice) or give "
                   "data/safety_eval.jsonl of real speech.")
    if results.safety_real:
        out.append(f"Real part of the yardstick (safety_real): {results.safety_real.describe}")
    if data.get("general_pool"):
        out.append(f"General-speech pool: {data['general_pool']}")
    if phase == "mini":
        out.append("Phase 1 (mini) is a smoke test of the whole chain; only phase 2 can be promoted.")
    return out


# writing -----------------------------------------------------------------------------------------

def write_report(ws: Workspace, report: dict[str, Any]) -> Path:
    """report.json, report.md and wer.png into the run folder; returns report.md's path."""
    run_dir = ws.run_dir(report["experiment"])
    run_dir.mkdir(parents=True, exist_ok=True)
    plot_wer(report, run_dir / "wer.png")
    write_json(run_dir / "report.json", report)
    md = run_dir / "report.md"
    write_text(md, render_markdown(report))
    log.info("report_written", path=str(md))
    return md


def _f(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _base_label(report: dict[str, Any]) -> str:
    base = report.get("base_model")
    return ModelIdentity.from_dict(base, Path(report["adapter"])).label() if base else f"`{report['model']}`"


def render_markdown(report: dict[str, Any]) -> str:
    lines = [f"# vocabd report: {report['experiment']} (phase {report['phase']})", "",
             f"Created {report['created']}. Base model {_base_label(report)}, adapter `{report['adapter']}`.", ""]
    lines += [f"- {note}" for note in report["notes"]] + [""]
    gate = report.get("gate")
    if gate:
        lines += ["## Promotion gate", "", f"**{'PROMOTED' if gate['promote'] else 'NOT PROMOTED'}** - "
                  f"{gate['reason']}", "", f"Yardstick the gate used: **{gate.get('yardstick') or 'given'}**.", ""]
    lines += ["## WER", "", "![WER over steps](wer.png)", "",
              "| set | clips | words | base WER | adapter WER | base WER (norm.) | adapter WER (norm.) "
              "| change (norm., same clips) | base term recall | adapter term recall |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in report["table"]:
        lines.append(f"| {r['set']} ({r['kind']}) | {r['clips']} | {r.get('words', '-')} | "
                     f"{_with_interval(r['base_wer'], r.get('base_raw_interval'))} | "
                     f"{_with_interval(r['adapter_wer'], r.get('adapter_raw_interval'))} | "
                     f"{_with_interval(r['base_wer_normalized'], r.get('base_interval'))} | "
                     f"{_with_interval(r['adapter_wer_normalized'], r.get('adapter_interval'))} | "
                     f"{_change(r.get('change'))} | {_f(r['base_term_recall'], 2)} | "
                     f"{_f(r['adapter_term_recall'], 2)} |")
    lines += ["", "Every WER shows its 95% bootstrap interval (clips resampled); the change is the adapter's normalized "
              "WER minus the base model's on the same clips, with its paired 95% interval: when that interval "
              "includes 0 the difference is within the noise.", ""]
    lines += [*_terms_md(report["terms"]), *_transcripts_md(report["transcripts"]),
              *_data_md(report), *_timings_md(report["timings"])]
    return "\n".join(lines) + "\n"


def _interval(spread: Spread) -> list[float]:
    return [spread.low, spread.high]


def _with_interval(value: float | None, interval: list[float] | None) -> str:
    return _f(value) if not interval else f"{_f(value)} [{_f(interval[0])}, {_f(interval[1])}]"


def _change(change: dict[str, Any] | None) -> str:
    if not change:
        return "-"
    noise = " (noise)" if change["within_noise"] else ""
    return f"{change['change']:+.3f} [{change['low']:+.3f}, {change['high']:+.3f}]{noise}"


def _terms_md(terms: list[dict[str, Any]]) -> list[str]:
    if not terms:
        return []
    lines = ["## Jargon terms (primary set, exact written form)", "",
             "| term | expected | base recall | adapter recall | adapter false alarms |",
             "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| `{t['term']}` | {t['expected']} | {_f(t['base_recall'], 2)} | {_f(t['adapter_recall'], 2)} | "
              f"{t['adapter_false_alarms']} |" for t in terms]
    return lines + [""]


def _cell(text: str) -> str:
    return text.replace("|", "\\|") or "(empty)"


def _transcripts_md(transcripts: dict[str, list[dict[str, str]]]) -> list[str]:
    lines = []
    for name, rows in transcripts.items():
        if not rows:
            continue
        lines += [f"## Transcripts with jargon or symbols ({name} set, {min(len(rows), SHOWN_TRANSCRIPTS)} of "
                  f"{len(rows)})", "", "| reference | base | adapter |", "| --- | --- | --- |"]
        lines += [f"| {_cell(r['ref'])} | {_cell(r['base'])} | {_cell(r['adapter'])} |"
                  for r in rows[:SHOWN_TRANSCRIPTS]]
        lines.append("")
    return lines


def _data_md(report: dict[str, Any]) -> list[str]:
    d, t = report["data"], report["training"]
    return ["## Data and training", "",
            f"- real recordings: {d['real_train_clips']} for training, {d['real_eval_clips']} held out",
            *(f"- long recording {line}" for line in d.get("long_recordings", [])),
            f"- synthetic clips: {d['synthetic_clips']} (voices: {', '.join(d['synthesis_voices']) or '-'}; "
            f"cloned: {'yes' if d['voice_cloned'] else 'no'})",
            f"- mixed training manifest: {d['mixed_clips']} clips {d['mixed_sources']}",
            f"- replay pool: {d['replay'] or 'none'} (ratio {d['replay_ratio']})",
            f"- training: {t['config']}", f"- steps done: {t['steps_done']}, seconds/step: "
            f"{_f(t['seconds_per_step'], 2)}, best step: {t['best_step']} (dev WER {_f(t['best_dev_wer'])})", ""]


def _timings_md(timings: dict[str, Any]) -> list[str]:
    if not timings:
        return []
    lines = ["## Stage wall times", "", "| phase | stage | wall s | runs |", "| --- | --- | ---: | ---: |"]
    for phase, stages in timings.items():
        lines += [f"| {phase} | {stage} | {v.get('wall_s', 0):.1f} | {v.get('runs', 1)} |" for stage, v in stages.items()]
    return lines + ["", "(`poll` spans the training process from the first poll to the last.)", ""]


def plot_wer(report: dict[str, Any], path: Path) -> None:
    """Dev WER over training steps, and base vs adapter bars per evaluation set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (curve_ax, bar_ax) = plt.subplots(1, 2, figsize=(10, 4))
    curve = report["training"]["curve"]
    if curve:
        curve_ax.plot([p["step"] for p in curve], [p["dev_wer"] for p in curve], marker="o", label="dev WER")
        replay = [p for p in curve if "replay_wer" in p]
        if replay:
            curve_ax.plot([p["step"] for p in replay], [p["replay_wer"] for p in replay], marker="s",
                          label="replay-dev WER")
        curve_ax.legend()
    else:
        curve_ax.text(0.5, 0.5, "no dev evaluations logged", ha="center", va="center")
    curve_ax.set(title="WER over training steps", xlabel="step", ylabel="WER")
    table = report["table"]
    xs = range(len(table))
    bar_ax.bar([x - 0.2 for x in xs], [r["base_wer_normalized"] for r in table], width=0.4, label="base")
    bar_ax.bar([x + 0.2 for x in xs], [r["adapter_wer_normalized"] for r in table], width=0.4, label="adapter")
    bar_ax.set_xticks(list(xs), [r["set"] for r in table])
    bar_ax.set(title="WER (normalized), base vs adapter", ylabel="WER")
    bar_ax.legend()
    fig.tight_layout()
    tmp = path.with_name(".wer.png.part")
    fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    tmp.replace(path)


def print_table(report: dict[str, Any], console: Any = None) -> None:
    """The final WER table, to the console (rich) and the log."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(stderr=True)
    table = Table(title=f"{report['experiment']} (phase {report['phase']})")
    for column in ("set", "clips", "base WER", "adapter WER", "base norm.", "adapter norm.", "term recall"):
        table.add_column(column, justify="left" if column == "set" else "right")
    for r in report["table"]:
        table.add_row(f"{r['set']} ({r['kind']})", str(r["clips"]), _f(r["base_wer"]), _f(r["adapter_wer"]),
                      _f(r["base_wer_normalized"]), _f(r["adapter_wer_normalized"]),
                      f"{_f(r['base_term_recall'], 2)} -> {_f(r['adapter_term_recall'], 2)}")
        log.info("wer_table", experiment=report["experiment"], **{k: v for k, v in r.items() if k != "manifest"})
    console.print(table)
    if report.get("gate"):
        console.print(("[green]" if report["gate"]["promote"] else "[yellow]") + report["gate"]["reason"])
    for note in report["notes"]:
        console.print(f"- {note}")
