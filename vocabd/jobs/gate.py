"""The promotion gate: an adapter becomes the active model only if it helps and does no harm.

Compared on the normalized WER (case, punctuation and number words ignored): the raw WER also
counts transcript-style differences, which the report shows separately.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class GateDecision:
    promote: bool
    reason: str
    primary_base: float
    primary_adapter: float
    safety_base: float | None
    safety_adapter: float | None
    safety_margin: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(
    primary_base: float, primary_adapter: float,
    safety_base: float | None, safety_adapter: float | None, safety_margin: float,
) -> GateDecision:
    """Promote only if the primary WER fell and the safety WER rose by at most `safety_margin`."""
    numbers = (primary_base, primary_adapter, safety_base, safety_adapter, safety_margin)
    if primary_adapter >= primary_base:
        return GateDecision(False, (
            f"kept out: the primary WER did not improve ({primary_base:.3f} -> {primary_adapter:.3f})"), *numbers)
    if safety_base is None or safety_adapter is None:
        return GateDecision(True, (
            f"promoted: the primary WER improved ({primary_base:.3f} -> {primary_adapter:.3f}); "
            "no safety set (data/safety_eval.jsonl), so general speech was not checked"), *numbers)
    rise = safety_adapter - safety_base
    if rise > safety_margin:
        return GateDecision(False, (
            f"kept out: the safety WER rose {safety_base:.3f} -> {safety_adapter:.3f} (+{rise:.3f}), "
            f"more than the allowed margin of {safety_margin:.3f} (gate.safety_margin)"), *numbers)
    return GateDecision(True, (
        f"promoted: the primary WER improved ({primary_base:.3f} -> {primary_adapter:.3f}) and the safety WER "
        f"did not rise beyond the margin of {safety_margin:.3f} ({safety_base:.3f} -> {safety_adapter:.3f})"),
        *numbers)


def decide_from_results(results: dict[str, Any], safety_margin: float) -> GateDecision:
    """`results` as `evaluate_run` returns them."""
    primary = results["primary"]
    safety = results.get("safety")
    return decide(
        primary["base"]["wer_normalized"], primary["adapter"]["wer_normalized"],
        safety["base"]["wer_normalized"] if safety else None,
        safety["adapter"]["wer_normalized"] if safety else None,
        safety_margin,
    )
