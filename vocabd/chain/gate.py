"""The promotion gate: an adapter becomes the active model only if it helps and does no harm.

Compared on the normalized WER (case, punctuation and number words ignored): the raw WER also
counts transcript-style differences, which the report shows separately. The gate is never blind:
with no general-speech yardstick at all it keeps the adapter out unless `[gate] require_safety = false`.
Base and adapter are compared on the same clips; the reason says when a difference is within the noise
(its 95% paired bootstrap interval includes 0). Beside a synthetic yardstick, which training on synthetic
speech improves, the real part (a few real voices that installed packages ship) keeps an adapter out when its
WER rose by more than the margin beyond the noise: too small to hold a fine line, enough to see clear harm.
"""

from __future__ import annotations

from dataclasses import dataclass

from vocabd.config import GateConfig
from vocabd.evaluation.evaluate import EvalResult
from vocabd.evaluation.runner import RunEvaluation
from vocabd.evaluation.uncertainty import Change, describe_change, paired_change


@dataclass
class GateDecision:
    promote: bool
    reason: str
    primary_base: float
    primary_adapter: float
    safety_base: float | None
    safety_adapter: float | None
    safety_margin: float
    blind: bool = False  # no safety yardstick of any kind
    false_alarms_base: int | None = None  # jargon written where general speech has none
    false_alarms_adapter: int | None = None
    safety_words: int | None = None
    primary_change: Change | None = None  # base vs adapter on the same clips
    safety_change: Change | None = None
    real_change: Change | None = None  # real voices beside a synthetic yardstick
    yardstick: str = ""  # what the safety yardstick is made of (general.pool.yardstick_kind)


def decide(
    primary_base: float, primary_adapter: float,
    safety_base: float | None, safety_adapter: float | None, safety_margin: float,
    require_safety: bool = True, false_alarms: tuple[int, int, int] | None = None,
    false_alarms_per_1000: float = 1.0,
    primary_change: Change | None = None, safety_change: Change | None = None,
    real_change: Change | None = None, yardstick: str = "",
) -> GateDecision:
    """Promote only if the primary WER fell, the safety WER rose by at most `safety_margin` and the adapter
    wrote no more jargon into general speech than the base model did, or at most `false_alarms_per_1000`.

    `false_alarms` is (base's, adapter's, words of the safety references): a bare count would let one word in a
    small synthetic set decide, so a single stray term in over 1,000 words does not keep an adapter out."""
    blind = safety_base is None or safety_adapter is None
    fa_base, fa_adapter, words = false_alarms if false_alarms else (None, None, None)

    def verdict(promote: bool, reason: str) -> GateDecision:
        return GateDecision(promote, reason, primary_base, primary_adapter, safety_base, safety_adapter,
                            safety_margin, blind, fa_base, fa_adapter, words, primary_change, safety_change,
                            real_change, yardstick)

    primary = f"({primary_base:.3f} -> {primary_adapter:.3f}" + (
        f"; change {describe_change(primary_change)})" if primary_change else ")")
    if primary_adapter >= primary_base:
        return verdict(False, f"kept out: the primary WER did not improve {primary}")
    if blind:
        if require_safety:
            return verdict(False, (
                f"kept out: no safety yardstick of any kind, so general speech could not be checked (the primary "
                f"WER improved {primary}); set [gate] require_safety = false to promote on the primary WER alone"))
        return verdict(True, (
            f"promoted: the primary WER improved {primary}; NO safety yardstick, general speech was not checked "
            "([gate] require_safety = false)"))
    safety = f"{safety_base:.3f} -> {safety_adapter:.3f}" + (
        f"; change {describe_change(safety_change)}" if safety_change else "")
    rise = safety_adapter - safety_base
    if rise > safety_margin:
        return verdict(False, (
            f"kept out: the safety WER rose ({safety}), more than the allowed margin of {safety_margin:.3f} "
            "(gate.safety_margin)"))
    if real_change and real_change.change > safety_margin and real_change.low > 0:
        return verdict(False, (
            f"kept out: on real voices the WER rose ({describe_change(real_change)}), more than the margin of "
            f"{safety_margin:.3f} beyond the noise, although the synthetic yardstick said {safety}"))
    more_false_alarms = fa_base is not None and fa_adapter > fa_base
    if more_false_alarms and 1000 * fa_adapter > false_alarms_per_1000 * words:
        return verdict(False, (
            f"kept out: the adapter writes jargon terms into general speech where the reference has none "
            f"({fa_base} -> {fa_adapter} false alarms in {words} words of the safety set, more than "
            f"{false_alarms_per_1000:g} per 1,000 words: gate.false_alarms_per_1000)"))
    stray = (f"; {fa_base} -> {fa_adapter} false alarms in {words} words of the safety set, within "
             f"gate.false_alarms_per_1000" if more_false_alarms else "")
    real = f"; real voices {describe_change(real_change)}" if real_change else ""
    return verdict(True, (
        f"promoted: the primary WER improved {primary} and the safety WER did not rise beyond the margin of "
        f"{safety_margin:.3f} ({safety}{stray}{real}); yardstick: {yardstick or 'given'}"))


def decide_from_results(results: RunEvaluation, gate: GateConfig, yardstick: str = "") -> GateDecision:
    """`yardstick` says what the safety set is made of."""
    primary, safety, real = results.primary, results.safety, results.safety_real
    safety_change = paired_change(safety.base, safety.adapter) if safety else None
    return decide(
        primary.base.wer_normalized, primary.adapter.wer_normalized,
        safety.base.wer_normalized if safety else None,
        safety.adapter.wer_normalized if safety else None,
        gate.safety_margin, require_safety=gate.require_safety,
        false_alarms=(_false_alarms(safety.base), _false_alarms(safety.adapter), safety_change.words)
        if safety and safety_change else None,
        false_alarms_per_1000=gate.false_alarms_per_1000,
        primary_change=paired_change(primary.base, primary.adapter),
        safety_change=safety_change,
        real_change=paired_change(real.base, real.adapter) if real else None, yardstick=yardstick,
    )


def _false_alarms(result: EvalResult) -> int:
    return sum(t.false_alarms for t in result.terms.values())
