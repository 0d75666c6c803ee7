"""A transcript's length follows its audio's: real espeak speech, the real inbox rules, the real split worker and
the real `vocabd correct`."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from tiny import speech_wav, tiny_workspace_config
from vocabd.audio import SAMPLE_RATE, load_audio, write_wav
from vocabd.cli import main
from vocabd.inbox.drops import handle, inbox_entries
from vocabd.workspace import init_workspace, open_workspace

SENTENCES = ["please call the front desk before noon", "the meeting moves to three on thursday",
             "send the invoice to accounts payable", "check the backup logs tonight and tomorrow",
             "restart the voicemail server after the update", "dial the operator for help with the line"]


@pytest.fixture(scope="module")
def sentences(tmp_path_factory) -> list[np.ndarray]:
    folder = tmp_path_factory.mktemp("speech")
    pause = np.zeros(int(0.6 * SAMPLE_RATE), np.float32)
    return [np.concatenate([load_audio(speech_wav(folder / f"{i}.wav", s)), pause]) for i, s in enumerate(SENTENCES)]


def speech(sentences: list[np.ndarray], seconds: float) -> tuple[np.ndarray, str]:
    """Real speech of about `seconds` (never more), with its whole transcript."""
    pieces, words, total = [], [], 0
    while True:
        for clip, sentence in zip(sentences, SENTENCES):
            if total + len(clip) > seconds * SAMPLE_RATE:
                return np.concatenate(pieces), ". ".join(words) + "."
            pieces.append(clip)
            words.append(sentence)
            total += len(clip)


@pytest.fixture
def ws(tiny_model, tmp_path):
    ws = init_workspace(tmp_path / "ws")
    ws.config_file.write_text(tiny_workspace_config(tiny_model))
    return open_workspace(ws.root)


def test_a_five_minute_recording_with_its_whole_transcript_is_taken_in_and_cut(ws, sentences):
    from vocabd.longform.pending import pending, read_results, split_pending

    audio, text = speech(sentences, 298.0)
    assert len(audio) / SAMPLE_RATE > 280 and len(text) > 3000
    write_wav(ws.inbox / "talk.wav", audio)
    (ws.inbox / "talk.txt").write_text(text, encoding="utf-8")
    [outcome] = handle(ws, inbox_entries(ws))
    assert outcome.status == "done" and "long recording" in outcome.message, outcome.message
    assert len(pending(ws)) == 1
    summary = split_pending(ws)
    assert summary is not None and "error" not in summary
    [result] = read_results(ws).values()
    assert len(result["kept"]) + len(result["left_out"]) >= 10  # 5 minutes in pieces under 30 s


def test_a_transcript_far_longer_than_its_audio_is_refused_with_the_limit(ws, sentences):
    audio, _ = speech(sentences, 8.0)
    write_wav(ws.inbox / "take.wav", audio)
    (ws.inbox / "take.txt").write_text("word " * 200, encoding="utf-8")
    [outcome] = handle(ws, inbox_entries(ws))
    assert outcome.status == "rejected"
    assert "999 characters" in outcome.message and "per second" in outcome.message, outcome.message


def test_a_short_clip_keeps_a_sane_minimum(ws, sentences):
    write_wav(ws.inbox / "take.wav", sentences[0])
    (ws.inbox / "take.txt").write_text("please call the front desk before noon, and then the back office as well",
                                       encoding="utf-8")
    [outcome] = handle(ws, inbox_entries(ws))
    assert outcome.status == "done", outcome.message


def test_a_long_fix_made_with_correct_is_taken_in(ws, sentences):
    from vocabd.corrections.store import keep

    audio, text = speech(sentences, 170.0)
    assert len(text) > 2000
    row = keep(ws, ws.root / "long.wav", audio, "heard something else", "base")
    done = CliRunner().invoke(main, ["correct", row["id"], "--text", text, "-w", str(ws.root)])
    assert done.exit_code == 0, done.output
    outcomes = handle(ws, inbox_entries(ws))
    assert [(o.drop.kind, o.status) for o in outcomes] == [("recording", "done")], [o.message for o in outcomes]
    assert "long recording" in outcomes[0].message


def test_a_fix_too_long_for_its_audio_is_refused_by_correct_and_can_be_redone(ws, sentences):
    from vocabd.corrections.store import keep

    row = keep(ws, ws.root / "short.wav", sentences[0], "heard something else", "base")
    done = CliRunner().invoke(main, ["correct", row["id"], "--text", "word " * 300, "-w", str(ws.root)])
    assert done.exit_code == 1 and "characters" in done.output, done.output
    assert not any(p.is_file() for p in ws.inbox.iterdir())
    again = CliRunner().invoke(main, ["correct", row["id"], "--text", SENTENCES[0], "-w", str(ws.root)])
    assert again.exit_code == 0, again.output


def test_a_fix_of_audio_too_long_to_train_on_is_refused_by_correct(ws, sentences):
    from vocabd.corrections.store import keep

    audio, text = speech(sentences, 310.0)
    audio = np.concatenate([audio, audio[: int(20 * SAMPLE_RATE)]])  # past the 300 s taken in
    row = keep(ws, ws.root / "hour.wav", audio, "heard something else", "base")
    done = CliRunner().invoke(main, ["correct", row["id"], "--text", text, "-w", str(ws.root)])
    assert done.exit_code == 1 and "not taken in" in done.output, done.output
    assert not any(p.is_file() for p in ws.inbox.iterdir())
