"""What a chain starts on (`state.Material`): long recordings waiting to be cut count, and a workspace without a
jargon list is told plainly when its recordings cannot make a chain."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from tiny import tone
from vocabd.audio import SAMPLE_RATE
from vocabd.chain import record as state
from vocabd.chain import stages
from vocabd.daemon.material import new_material
from vocabd.daemon.status import collect_status, render_status
from vocabd.errors import VocabdError
from vocabd.files import write_json
from vocabd.longform.align import PieceText
from vocabd.longform.pending import store_long_recording
from vocabd.longform.worker import Piece, store_pieces
from vocabd.split import split_for_text
from vocabd.workspace import LONG_PIECES

CANDIDATES = [f"please call the front desk about room {n} before noon" for n in range(40)]
TRAIN = [t for t in CANDIDATES if split_for_text(t) == "train"]
HELD_OUT = [t for t in CANDIDATES if split_for_text(t) == "eval"]


def drop_long(ws, name: str = "talk.wav", seconds: float = 40.0) -> dict:
    """A long recording kept for splitting, as ingest keeps it; returns its row."""
    audio = tone(seconds)
    digest, key = hashlib.sha256(name.encode() + audio.tobytes()).hexdigest(), name.rsplit(".", 1)[0]
    store_long_recording(ws, audio, "the words", name, key, digest)
    return {"audio": f"recordings/long/{digest[:16]}.wav", "sha256": digest, "id": f"{key}-{digest[:8]}",
            "origin": name, "duration": seconds}


def split_as_the_worker_does(ws, row: dict, texts: list[str], left_out: int = 0) -> None:
    """The split worker's writes for `row`: a kept piece per text (train or held out by the usual split), then
    `left_out` pieces whose words disagree."""
    pieces = [Piece(i * 5.0, i * 5.0 + 5.0, True, PieceText(text, text, 0.0)) for i, text in enumerate(texts)]
    pieces += [Piece(0.0, 1.0, True, PieceText("x", "y", 1.0, "the words disagree")) for _ in range(left_out)]
    audio = np.zeros(int(5.0 * len(pieces) * SAMPLE_RATE), np.float32)
    write_json(ws.data / LONG_PIECES, {row["sha256"]: store_pieces(ws, row, audio, pieces)})


def test_long_recordings_waiting_to_be_cut_are_what_a_chain_starts_on(ws):
    drop_long(ws, "talk.wav")
    drop_long(ws, "meeting.wav")
    name, phase, stage = stages.start_chain(ws)  # no "nothing to train on": the chain's first stage cuts them
    assert (phase, stage) == ("mini", "synthesize")
    material = state.current(ws).material
    assert (material.long_recordings, material.my_voice_train, material.jargon) == (2, 0, False)


def test_a_long_recording_placed_in_data_is_new_material(ws):
    drop_long(ws)  # written without the inbox ledger, as by hand
    assert new_material(ws)
    stages.start_chain(ws)
    assert not new_material(ws)


def test_a_recording_once_cut_counts_by_its_pieces(ws):
    row = drop_long(ws)
    split_as_the_worker_does(ws, row, TRAIN[:3] + HELD_OUT[:1])
    material = stages.snapshot_material(ws)
    assert (material.long_recordings, material.my_voice_train, material.my_voice_eval) == (0, 3, 1)
    stages.require_recordings_alone(ws, material)  # enough on both sides: no error


def test_recordings_alone_with_no_held_out_piece_name_the_recording_and_what_to_do(ws):
    row = drop_long(ws)
    split_as_the_worker_does(ws, row, TRAIN[:4], left_out=1)
    with pytest.raises(VocabdError) as error:
        stages.require_recordings_alone(ws, stages.snapshot_material(ws))
    message = str(error.value)
    assert "no held-out recording" in message and "talk.wav (40 s, kept as data/recordings/long/" in message
    assert "4 piece(s) kept (4 to train on, 0 held out), 1 left out (the first: the words disagree)" in message
    assert str(ws.inbox) in message and "jargon list" in message and "data/long_pieces.json lists every piece" in message
    assert (ws.data / row["audio"]).is_file() and ws.manifest("my_voice_train").read_text().count("\n") == 4


def test_recordings_alone_with_no_piece_kept_say_why(ws):
    row = drop_long(ws)
    split_as_the_worker_does(ws, row, [], left_out=2)
    with pytest.raises(VocabdError, match=r"0 recording\(s\) to train on .*talk.wav .*no piece kept, 2 left out "
                                          r"\(the first: the words disagree\)"):
        stages.require_recordings_alone(ws, stages.snapshot_material(ws))


def test_a_failed_split_is_named_and_its_recording_waits(ws):
    drop_long(ws)
    with pytest.raises(VocabdError, match=r"the splitting worker failed \(killed\).*talk.wav .*not split yet"):
        stages.require_recordings_alone(ws, stages.snapshot_material(ws), "killed")
    assert stages.snapshot_material(ws).long_recordings == 1


def test_short_recordings_alone_with_none_held_out_are_refused_at_start(ws):
    rows = "".join(f'{{"audio": "recordings/{i}.wav", "text": "{t}", "duration": 2.0}}\n' for i, t in enumerate(TRAIN[:3]))
    ws.manifest("my_voice_train").write_text(rows)
    with pytest.raises(VocabdError, match="no held-out recording") as refused:
        stages.start_chain(ws)
    state.start_refused(ws, str(refused.value))  # what the daemon does with a refused start
    assert "\nrefused    no jargon list and no held-out recording" in render_status(collect_status(ws))
    (ws.data / "jargon.txt").write_text("kubectl\n")  # a jargon list gives a held-out synthetic set
    stages.start_chain(ws)
    assert "refused" not in render_status(collect_status(ws))


def test_a_chain_whose_long_recordings_give_no_held_out_piece_stops_after_the_cut_saying_why(ws):
    row = drop_long(ws)
    name, phase, stage = stages.start_chain(ws)
    split_as_the_worker_does(ws, row, TRAIN[:4])  # the cut, as the stage's splitting worker leaves it
    with pytest.raises(stages.StageFailed) as failed:
        stages.run_stage(ws, name, phase, stage)  # no process starts: the check comes before the synthesis
    text = failed.value.failed_file.read_text()
    assert "stage `synthesize`" in text and "talk.wav" in text and "0 held out" in text and "data/long_pieces.json" in text
    assert state.current(ws).failed == str(failed.value.failed_file)
    assert (ws.data / row["audio"]).is_file()  # nothing lost
