"""The chain as one object: the stage table, the record's codec, typed results kept in data/chain.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vocabd.chain import record as state
from vocabd.chain import spec
from vocabd.chain.gate import decide
from vocabd.chain.stages import STAGE_FUNCTIONS
from vocabd.codec import DecodeError, decode, encode
from vocabd.evaluation.runner import SetScore
from vocabd.synthesis.results import Failure, MixResult, SourceStats, SynthesisResult


def test_the_table_orders_the_stages_and_crosses_into_the_next_phase():
    assert tuple(STAGE_FUNCTIONS) == spec.STAGE_NAMES == ("synthesize", "mix", "train", "poll", "evaluate")
    assert spec.advance("mini", "mix").next_stage == "train"
    after_mini = spec.advance("mini", "evaluate")
    assert (after_mini.next_stage, after_mini.next_phase) == ("synthesize", "full")
    assert spec.advance("full", "evaluate").next_stage is None
    assert spec.again("poll", 15.0).next_stage == "poll" and spec.again("poll", 15.0).delay == 15.0
    assert spec.stage("poll").max_resumes == 2 and spec.stage("mix").max_attempts == 3
    assert [spec.retry_delay(30.0, attempt) for attempt in (1, 2, 3)] == [30.0, 60.0, 120.0]
    with pytest.raises(Exception, match="unknown stage"):
        spec.check("mini", "bake")


def test_typed_results_round_trip_through_the_record(ws):
    synthesis = SynthesisResult(manifest=Path("data/synthetic_train_mini.jsonl"), backend="espeak", cloned=False,
                                voices=["en-us"], requested=3, made=2, cached=0,
                                failures=[Failure("PBX", "clip is silent")], audio_seconds=4.5)
    mix = MixResult(manifest=Path("data/mixed_train_mini.jsonl"),
                    sources={"synthetic": SourceStats(unique=2, rows=4, hours=0.01)}, synthetic_ratio=0.7,
                    achieved_ratio=1.0)
    gate = decide(0.2, 0.1, 0.05, 0.05, safety_margin=0.005)
    evaluated = state.EvaluateResult(report="runs/c_full/report.md", gate=gate,
                                     primary=SetScore("data/synthetic_eval.jsonl", "synthetic", 9, 0.3, 0.2, 0.25, 0.1))
    state.new_chain(ws, "c", state.Material(jargon=True))
    with state.editing(ws) as record:
        record.chain.results["mini"] = state.PhaseResults(synthesize=synthesis, mix=mix)
        record.chain.results["full"] = state.PhaseResults(evaluate=evaluated)
    chain = state.current(ws)
    assert chain.results["mini"].synthesize == synthesis and chain.results["mini"].mix == mix
    assert chain.results["mini"].mix.rows == 4 and chain.results["mini"].synthesize.clips == 2
    assert chain.results["full"].evaluate == evaluated and chain.results["full"].evaluate.gate.promote
    assert json.loads(state.chain_path(ws).read_text())["version"] == state.VERSION


def test_a_record_written_before_typed_results_still_loads(ws):
    """The shape an older vocabd wrote: stage summaries of another shape, no version; the chain goes on."""
    old = {"chain": {"name": "adapt-1", "phase": "full", "stage": "poll", "state": "queued", "attempt": 1,
                     "token": "t0", "eta_epoch": 1.0, "material": {"jargon": True, "my_voice_train": 0},
                     "progress": {"step": 3, "max_steps": 10, "eta_seconds": None},
                     "timings": {"mini": {"mix": {"start": 1.0, "end": 2.0, "wall_s": 1.0, "runs": 1}}},
                     "results": {"mini": {"synthesize": {"manifest": "m", "backend": "piper", "clips": 4,
                                                         "failures": 0},
                                          "mix": {"manifest": "x", "rows": 8, "sources": {"real": 2}, "problems": 0}}},
                     "resumes": {"full": 1}},
           "considered_seq": 4, "considered_epoch": 2.0, "failures": []}
    state.chain_path(ws).write_text(json.dumps(old))
    record = state.read_record(ws)
    chain = record.chain
    assert (chain.name, chain.phase, chain.stage, chain.token, chain.resumes) == ("adapt-1", "full", "poll", "t0",
                                                                                   {"full": 1})
    assert chain.progress.step == 3 and chain.timings["mini"]["mix"].wall_s == 1.0 and chain.results == {}
    assert record.considered_seq == 4 and chain.live
    assert chain.material == state.Material(jargon=True, long_recordings=0)  # fields added since take their defaults


def test_a_field_of_the_wrong_type_is_named_with_what_to_do(ws):
    state.new_chain(ws, "c", state.Material())
    data = json.loads(state.chain_path(ws).read_text())
    data["chain"]["timings"] = {"mini": {"mix": {"start": "soon"}}}
    state.chain_path(ws).write_text(json.dumps(data))
    with pytest.raises(state.StateCorrupt) as caught:
        state.read_record(ws)
    message = str(caught.value)
    assert "chain.json" in message and "chain.timings.mini.mix.start" in message and "--repair" in message


def test_the_codec_checks_types_and_keeps_paths_and_nested_dataclasses():
    mix = MixResult(manifest=Path("a.jsonl"), sources={"real": SourceStats(rows=2)}, synthetic_ratio=0.5,
                    achieved_ratio=None)
    data = encode(mix)
    assert data["manifest"] == "a.jsonl" and data["sources"]["real"]["rows"] == 2
    assert decode(MixResult, json.loads(json.dumps(data))) == mix
    with pytest.raises(DecodeError, match=r"MixResult.sources.real.rows is '2', not a whole number"):
        decode(MixResult, {**data, "sources": {"real": {"rows": "2"}}})
    with pytest.raises(DecodeError, match="MixResult.synthetic_ratio is missing"):
        decode(MixResult, {"manifest": "a", "sources": {}, "achieved_ratio": None})
    with pytest.raises(DecodeError, match="not a number"):
        decode(MixResult, {**data, "synthetic_ratio": True})


def test_an_evaluation_result_survives_its_own_json_as_workers_and_the_cache_write_it():
    from vocabd.evaluation.evaluate import EvalResult, score_transcripts

    result = score_transcripts(["run kubectl now", "the sun"], ["run cube control now", "the sun"], ["kubectl"])
    again = decode(EvalResult, json.loads(json.dumps(result.to_dict())))
    assert again.wer == result.wer and again.terms["kubectl"].expected == 1 and again.utterances == result.utterances
