"""Rich tables of an evaluation, for people."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from vocabd.evaluation.evaluate import EvalResult


def print_result(result: EvalResult, console: Console | None = None) -> None:
    console = console or Console()
    summary = Table(title=f"{result.model}" + (f" + {result.adapter}" if result.adapter else ""))
    for column in ("clips", "audio", "WER", "WER (normalized)", "term recall", "false alarms", "RTF"):
        summary.add_column(column, justify="right")
    recall = result.term_recall
    summary.add_row(
        str(result.clips), f"{result.audio_seconds / 60:.1f} min", f"{result.wer:.3f}", f"{result.wer_normalized:.3f}",
        "-" if recall is None else f"{recall:.2f}", str(sum(s.false_alarms for s in result.terms.values())),
        f"{result.rtf:.3f}",
    )
    console.print(summary)
    if result.terms:
        terms = Table(title="jargon terms (exact written form)")
        for column in ("term", "expected", "hits", "recall", "false alarms"):
            terms.add_column(column, justify="left" if column == "term" else "right")
        for term, s in sorted(result.terms.items(), key=lambda kv: (kv[1].recall is None, kv[1].recall or 0)):
            terms.add_row(term, str(s.expected), str(s.hits), "-" if s.recall is None else f"{s.recall:.2f}",
                          str(s.false_alarms))
        console.print(terms)
    worst = Table(title="worst utterances")
    for column in ("WER", "reference", "hypothesis"):
        worst.add_column(column, justify="right" if column == "WER" else "left")
    for u in result.worst():
        worst.add_row(f"{u.wer:.2f}", u.ref, u.hyp)
    console.print(worst)
    for problem in result.skipped:
        console.print(f"[yellow]skipped[/yellow] {problem}")
