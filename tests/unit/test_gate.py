"""The promotion gate: helps and does no harm, never blind, no jargon false alarms on general speech."""

from vocabd.chain.gate import decide, decide_from_results
from vocabd.config import GateConfig
from vocabd.evaluation.evaluate import score_transcripts
from vocabd.evaluation.runner import RunEvaluation, SetPair
from vocabd.evaluation.uncertainty import paired_change, wer_spread


def test_gate_promotes_when_primary_improves_and_safety_holds():
    decision = decide(0.20, 0.12, 0.050, 0.054, safety_margin=0.005)
    assert decision.promote and "promoted" in decision.reason


def test_gate_keeps_out_when_primary_does_not_improve():
    decision = decide(0.20, 0.20, 0.05, 0.04, safety_margin=0.005)
    assert not decision.promote and "primary WER did not improve" in decision.reason


def test_gate_keeps_out_when_safety_regresses_beyond_margin():
    decision = decide(0.20, 0.10, 0.050, 0.056, safety_margin=0.005)
    assert not decision.promote
    assert "safety WER rose" in decision.reason and "0.005" in decision.reason


def test_gate_margin_is_configurable():
    assert decide(0.20, 0.10, 0.050, 0.056, safety_margin=0.01).promote


def test_gate_is_never_blind_by_default():
    decision = decide(0.20, 0.10, None, None, safety_margin=0.005)
    assert not decision.promote and decision.blind
    assert "no safety yardstick" in decision.reason and "require_safety = false" in decision.reason


def test_gate_without_yardstick_promotes_only_when_the_user_said_so():
    decision = decide(0.20, 0.10, None, None, safety_margin=0.005, require_safety=False)
    assert decision.promote and decision.blind and "NO safety yardstick" in decision.reason


def test_gate_refuses_an_adapter_that_writes_jargon_into_general_speech():
    decision = decide(0.20, 0.10, 0.050, 0.050, safety_margin=0.005, false_alarms=(0, 2, 1330))
    assert not decision.promote and "false alarms in 1330 words" in decision.reason
    assert decide(0.20, 0.10, 0.050, 0.050, safety_margin=0.005, false_alarms=(1, 1, 500)).promote


def test_one_stray_term_in_over_a_thousand_words_is_within_the_rate_and_the_reason_says_so():
    decision = decide(0.20, 0.10, 0.050, 0.050, safety_margin=0.005, false_alarms=(0, 1, 1330))
    assert decision.promote and "0 -> 1 false alarms in 1330 words" in decision.reason
    assert not decide(0.20, 0.10, 0.050, 0.050, safety_margin=0.005, false_alarms=(0, 1, 900)).promote
    assert not decide(0.20, 0.10, 0.050, 0.050, safety_margin=0.005, false_alarms=(0, 1, 1330),
                      false_alarms_per_1000=0).promote


def _result(refs: list[str], hyps: list[str], terms: tuple[str, ...] = ()):
    return score_transcripts(refs, hyps, terms, audio=[f"/a/{i}.wav" for i in range(len(refs))])


def _pair(base, adapter) -> SetPair:
    return SetPair("m.jsonl", "synthetic", base, adapter)


REFS = [f"the train to the city leaves at {h} in the morning" for h in range(1, 41)]


def test_results_from_a_false_alarming_adapter_are_refused():
    general = [f"Please book a table for {n} people tonight." for n in range(2, 12)]
    results = RunEvaluation(
        primary=_pair(_result(REFS, [r.replace("city", "sitty") for r in REFS]), _result(REFS, REFS)),
        safety=_pair(_result(general, general, ("kubectl",)),
                     _result(general, [g.replace("book", "kubectl") for g in general[:3]] + general[3:], ("kubectl",))))
    assert sum(t.false_alarms for t in results.safety.adapter.terms.values()) == 3
    results.safety.adapter.wer_normalized = results.safety.base.wer_normalized  # WER alone holds
    decision = decide_from_results(results, GateConfig())
    assert not decision.promote and "false alarms" in decision.reason


def test_a_difference_on_a_few_clips_is_within_the_noise_and_the_reason_says_so():
    hyps = list(REFS)
    hyps[0] = REFS[0].replace("morning", "mourning")
    change = paired_change(_result(REFS, hyps), _result(REFS, REFS))
    assert change.change < 0 and change.within_noise and change.clips == 40
    big = paired_change(_result(REFS, [r.replace("city", "sitty") for r in REFS]), _result(REFS, REFS))
    assert not big.within_noise and big.high < 0
    decision = decide_from_results(RunEvaluation(_pair(_result(REFS, hyps), _result(REFS, REFS)),
                                                 _pair(_result(REFS, REFS), _result(REFS, REFS))), GateConfig())
    assert decision.promote and "within the noise" in decision.reason and "40 clips" in decision.reason


def test_wer_spread_gives_clips_words_and_an_interval_around_the_wer():
    hyps = [r.replace("city", "sitty") if i % 4 == 0 else r for i, r in enumerate(REFS)]
    spread = wer_spread(_result(REFS, hyps))
    assert spread.clips == 40 and spread.words == sum(len(r.split()) for r in REFS)
    assert spread.low < spread.wer < spread.high
    assert abs(spread.wer - 10 / spread.words) < 1e-9


REFS = [f"the train to the city leaves at {h} in the morning" for h in range(1, 41)]


def _run(primary, safety, real) -> RunEvaluation:
    return RunEvaluation(_pair(*primary), _pair(*safety), SetPair("real.jsonl", "real general speech", *real))


def test_the_gate_keeps_out_an_adapter_that_hurts_real_voices_while_the_synthetic_yardstick_improves():
    worse = [r.replace("train", "trane").replace("city", "sitty") for r in REFS]
    results = _run((_result(REFS, worse), _result(REFS, REFS)), (_result(REFS, worse), _result(REFS, REFS)),
                   (_result(REFS, REFS), _result(REFS, worse)))
    decision = decide_from_results(results, GateConfig(), "synthetic + a small real part")
    assert not decision.promote and "on real voices" in decision.reason
    assert decision.yardstick == "synthetic + a small real part" and decision.real_change.change > 0


def test_a_real_change_within_the_noise_does_not_keep_an_adapter_out():
    one_word = list(REFS)
    one_word[0] = REFS[0].replace("morning", "mourning")
    results = _run((_result(REFS, [r.replace("city", "sitty") for r in REFS]), _result(REFS, REFS)),
                   (_result(REFS, REFS), _result(REFS, REFS)), (_result(REFS, REFS), _result(REFS, one_word)))
    decision = decide_from_results(results, GateConfig(), "synthetic + a small real part")
    assert decision.promote and "real voices +0.0" in decision.reason
    assert decide(0.2, 0.1, 0.05, 0.05, 0.005).promote  # no real part: the old rules alone
