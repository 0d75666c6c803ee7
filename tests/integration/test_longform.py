"""Recordings over 30 s: cut in pauses, transcript shared out by alignment, poor pieces left out with a reason."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tiny import speech_wav, tiny_workspace_config
from vocabd.audio import SAMPLE_RATE, load_audio, write_wav
from vocabd.longform.align import align, share_transcript
from vocabd.longform.silence import MAX_PIECE_S, cut_points, pauses

SENTENCES = ["please call the front desk", "the meeting moves to three", "send the invoice to accounts",
             "check the backup logs tonight", "restart the voicemail server", "dial the operator for help"]


@pytest.fixture(scope="module")
def long_speech(tmp_path_factory) -> tuple[np.ndarray, str]:
    """Real speech: espeak sentences with a pause of 0.6 s after each, repeated past 30 s."""
    folder = tmp_path_factory.mktemp("long")
    pieces, words = [], []
    while sum(len(p) for p in pieces) < 40 * SAMPLE_RATE:
        for i, sentence in enumerate(SENTENCES):
            pieces += [load_audio(speech_wav(folder / f"{i}.wav", sentence)), np.zeros(int(0.6 * SAMPLE_RATE), np.float32)]
            words.append(sentence)
    return np.concatenate(pieces), ". ".join(words) + "."


def test_cuts_fall_in_pauses_and_pieces_stay_under_30_s(long_speech):
    audio, _ = long_speech
    gaps = pauses(audio)
    cuts = cut_points(audio)
    bounds = [0.0] + [t for t, _ in cuts] + [len(audio) / SAMPLE_RATE]
    assert len(bounds) >= 3 and all(b - a <= MAX_PIECE_S for a, b in zip(bounds, bounds[1:]))
    assert all(in_pause and any(s <= t <= e for s, e in gaps) for t, in_pause in cuts)


def test_no_pause_forces_a_cut_at_the_quietest_point():
    t = np.arange(70 * SAMPLE_RATE) / SAMPLE_RATE
    audio = (0.3 * np.sin(2 * np.pi * 200 * t) * (1 - 0.5 * (np.abs(t - 20) < 0.05))).astype(np.float32)
    cuts = cut_points(audio)
    assert len(cuts) >= 2 and not any(in_pause for _, in_pause in cuts)
    assert abs(cuts[0][0] - 20) < 0.1


def test_transcript_is_shared_by_alignment():
    reference = "Dial 1 now. Dial 2 for voicemail, then press the pound key."
    pieces = share_transcript(reference, ["dial one now dial two", "for voicemail then press the pound key"])
    assert [p.text for p in pieces] == ["Dial 1 now. Dial 2", "for voicemail, then press the pound key."]
    assert all(p.kept for p in pieces)


def test_a_piece_whose_words_disagree_or_whose_cut_is_uncertain_is_left_out():
    reference = "the quick brown fox jumps over the lazy dog and runs far away"
    wrong = share_transcript(reference, ["the quick brown fox jumps", "completely different words here now"])
    assert not wrong[1].kept and "disagree" in wrong[1].reason
    blurred = share_transcript(reference, ["the quick brown fox jumps ov", "the lazy dog and runs far away"])
    assert not blurred[0].kept and "cut next to 'over'" in blurred[0].reason


def test_alignment_keeps_order():
    assert align("a b c d".split(), "a x c d".split()) == [0, 1, 2, 3]
    assert align("a b c d".split(), "a d".split()) == [0, None, None, 1]


def test_long_recording_is_taken_in_and_split_by_the_chain_worker(tiny_model, tmp_path, long_speech):
    """Ingest keeps it (not rejected); the worker subprocess splits it with the base model (here the tiny
    random one, whose words never align: every piece is left out, each with its reason)."""
    from vocabd.inbox.drops import handle, inbox_entries
    from vocabd.longform.pending import pending, read_results, split_pending
    from vocabd.workspace import init_workspace, open_workspace

    ws = init_workspace(tmp_path / "ws")
    ws.config_file.write_text(tiny_workspace_config(tiny_model))
    ws = open_workspace(ws.root)
    audio, text = long_speech
    write_wav(ws.inbox / "talk.wav", audio)
    (ws.inbox / "talk.txt").write_text(text)
    [outcome] = handle(ws, inbox_entries(ws))
    assert outcome.status == "done" and "long recording" in outcome.message
    assert len(pending(ws)) == 1 and not ws.manifest("my_voice_train").exists()
    summary = split_pending(ws)
    assert summary is not None and "error" not in summary
    [result] = read_results(ws).values()
    assert result["origin"] == "talk.wav" and len(result["kept"]) + len(result["left_out"]) >= 2
    assert all(p["reason"] for p in result["left_out"])
    assert pending(ws) == [] and split_pending(ws) is None  # done once
    rows = [json.loads(line) for name in ("my_voice_train", "my_voice_eval") if ws.manifest(name).exists()
            for line in ws.manifest(name).read_text().splitlines()]
    assert [r["sha256"].rsplit("-p", 1)[1] for r in rows] == [f"{p['piece']:02d}" for p in result["kept"]]
