"""Inbox rules and the watcher, on real files and a real watchdog observer (no daemon process)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tiny import wait_until
from vocabd.audio import load_audio, write_wav
from vocabd.inbox import drops, ledger
from vocabd.inbox.drops import handle, inbox_entries, is_ignored
from vocabd.split import split_for_text
from vocabd.daemon.watcher import InboxWatcher
from vocabd.manifest import load_manifest
from vocabd.timing import Timing


def tone(path: Path, seconds: float = 1.0, freq: float = 220.0, rate: int = 16000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    write_wav(path, 0.3 * np.sin(2 * np.pi * freq * t).astype(np.float32), rate)
    return path


def files_under(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_jargon_list_is_merged_and_moved_to_done(ws):
    (ws.inbox / "terms.txt").write_text("# my words\nPBX | P B X\nkubectl\nC#\n", encoding="utf-8")
    [outcome] = handle(ws, inbox_entries(ws))
    assert outcome.status == "done" and outcome.drop.kind == "jargon"
    assert files_under(ws.inbox / "done") == ["terms.txt"] and inbox_entries(ws) == []
    (ws.inbox / "more.txt").write_text("kubectl | kube control\nops@acme.io\n", encoding="utf-8")
    [outcome] = handle(ws, inbox_entries(ws))
    assert "1 new, 1 spoken forms updated" in outcome.message
    lines = (ws.data / "jargon.txt").read_text(encoding="utf-8").splitlines()[1:]
    assert lines == ["PBX | P B X", "kubectl | kube control", "C#", "ops@acme.io"]
    assert ledger.read_state(ws)["seq"] == 2


def test_jargon_list_with_no_new_terms_is_not_new_material(ws):
    (ws.inbox / "a.txt").write_text("PBX\n", encoding="utf-8")
    (ws.inbox / "b.txt").write_text("PBX  # again\n", encoding="utf-8")
    outcomes = handle(ws, inbox_entries(ws))
    assert [o.status for o in outcomes] == ["done", "done"]
    assert ledger.read_state(ws)["seq"] == 1


def test_recordings_go_to_a_stable_split_and_load_as_a_manifest(ws):
    for i in range(12):
        tone(ws.inbox / f"take{i}.wav", 0.5 + i * 0.1, freq=200 + 30 * i)
        (ws.inbox / f"take{i}.txt").write_text(f"press the pound key {i}\n", encoding="utf-8")
    outcomes = handle(ws, inbox_entries(ws))
    assert {o.status for o in outcomes} == {"done"} and len(outcomes) == 12
    train = load_manifest(ws.manifest("my_voice_train"), root=ws.root)
    evalset = load_manifest(ws.manifest("my_voice_eval"), root=ws.root) if ws.manifest("my_voice_eval").exists() else []
    assert len(train) + len(evalset) == 12
    for clip in train + evalset:
        stem = clip.extra["origin"][: -len(".wav")]
        expected = "eval" if clip in evalset else "train"
        assert split_for_text(clip.text) == expected
        assert clip.text == f"press the pound key {stem[4:]}" and clip.source == "real"
        assert clip.audio.parent == ws.data / "recordings"
    assert len(files_under(ws.inbox / "done")) == 24


def test_transcript_may_be_named_after_the_whole_audio_name(ws):
    tone(ws.inbox / "hello.flac.wav")  # odd but legal: stem "hello.flac"
    tone(ws.inbox / "take.wav")
    (ws.inbox / "take.wav.txt").write_text("the star key", encoding="utf-8")
    kinds = sorted(o.drop.kind for o in handle(ws, inbox_entries(ws)))
    assert kinds == ["recording", "voice"]


def test_audio_alone_is_a_voice_sample(ws):
    tone(ws.inbox / "me.wav", seconds=4.0, rate=44100)
    [outcome] = handle(ws, inbox_entries(ws))
    assert outcome.drop.kind == "voice" and outcome.status == "done"
    ref = ws.data / "voice_ref.wav"
    assert len(load_audio(ref, 24000)) == pytest.approx(4 * 24000, abs=10)
    assert not (ws.data / "voice_ref.txt").exists()


def test_voice_named_sample_with_transcript_keeps_its_text(ws):
    tone(ws.inbox / "voice_ref.wav", seconds=5.0)
    (ws.inbox / "voice_ref.txt").write_text("Some call me nature.\n", encoding="utf-8")
    [outcome] = handle(ws, inbox_entries(ws))
    assert outcome.drop.kind == "voice"
    assert (ws.data / "voice_ref.txt").read_text(encoding="utf-8").strip() == "Some call me nature."


def test_duplicates_are_set_aside_not_ingested_twice(ws):
    tone(ws.inbox / "a.wav")
    (ws.inbox / "a.txt").write_text("first", encoding="utf-8")
    handle(ws, inbox_entries(ws))
    rows = ws.manifest("my_voice_train").read_text() if ws.manifest("my_voice_train").exists() else ""
    rows += ws.manifest("my_voice_eval").read_text() if ws.manifest("my_voice_eval").exists() else ""
    (ws.inbox / "copy.wav").write_bytes((ws.inbox / "done" / "a.wav").read_bytes())
    (ws.inbox / "copy.txt").write_text("first", encoding="utf-8")
    [outcome] = handle(ws, inbox_entries(ws))
    assert outcome.status == "duplicate"
    assert files_under(ws.inbox / "rejected") == ["copy.txt", "copy.txt.reason.txt", "copy.wav", "copy.wav.reason.txt"]
    assert "same content as a.wav" in (ws.inbox / "rejected" / "copy.wav.reason.txt").read_text()
    after = ws.manifest("my_voice_train").read_text() if ws.manifest("my_voice_train").exists() else ""
    after += ws.manifest("my_voice_eval").read_text() if ws.manifest("my_voice_eval").exists() else ""
    assert after == rows and len(rows.splitlines()) == 1


def _write(path: Path, content) -> None:
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        content(path)


BAD_INPUTS = {
    "empty audio": ({"a.wav": b""}, "empty"),
    "corrupt audio": ({"a.wav": b"RIFF\x00\x00garbage" * 50}, "unreadable"),
    "unsupported type": ({"notes.pdf": b"%PDF-1.4"}, "unsupported file type .pdf"),
    "no extension": ({"README": "hello"}, "unsupported file type (no extension)"),
    "empty transcript": ({"a.wav": tone, "a.txt": "  \n"}, "transcript a.txt is empty"),
    "transcript not utf-8": ({"a.wav": tone, "a.txt": "caf\xe9".encode("latin-1")}, "not UTF-8"),
    "jargon only comments": ({"terms.txt": "# nothing yet\n\n"}, "no terms"),
    "jargon bad line": ({"terms.txt": "PBX | P B X | pbx\n"}, "more than one '|'"),
    "jargon binary": ({"terms.txt": b"PK\x03\x04\x00\x00binary"}, "binary"),
    "silent recording": ({"a.wav": lambda p: write_wav(p, np.zeros(16000, np.float32)), "a.txt": "hi"}, "silent"),
    "recording too long": ({"a.wav": lambda p: tone(p, 301.0), "a.txt": "hi"}, "301.00 s long"),
    "voice sample too short": ({"a.wav": lambda p: tone(p, 1.0)}, "1.00 s long; expected 2-30 s"),
    "two audio files, one transcript": ({"a.wav": tone, "a.flac": b"fLaC", "a.txt": "hi"}, "share the name 'a'"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_ends_in_rejected_with_a_reason(ws, case):
    files, problem = BAD_INPUTS[case]
    for name, content in files.items():
        _write(ws.inbox / name, content)
    outcomes = handle(ws, inbox_entries(ws))
    assert {o.status for o in outcomes} == {"rejected"}
    assert inbox_entries(ws) == []
    rejected = ws.inbox / "rejected"
    for name in files:
        assert (rejected / name).exists(), f"{name} was not kept"
        reason = (rejected / f"{name}.reason.txt").read_text(encoding="utf-8")
        assert problem in reason and reason.startswith(name)
    assert ledger.read_state(ws)["seq"] == 0
    assert not (ws.data / "jargon.txt").exists() and not ws.manifest("my_voice_train").exists()


def test_a_dropped_folder_is_rejected_whole(ws):
    (ws.inbox / "takes").mkdir()
    tone(ws.inbox / "takes" / "x.wav")
    handle(ws, inbox_entries(ws))
    assert (ws.inbox / "rejected" / "takes" / "x.wav").exists()
    assert "folders are not read" in (ws.inbox / "rejected" / "takes.reason.txt").read_text()


def test_name_clash_in_done_keeps_pairs_together(ws):
    for freq in (300, 400):
        tone(ws.inbox / "take.wav", freq=freq)
        (ws.inbox / "take.txt").write_text(f"tone {freq}", encoding="utf-8")
        handle(ws, inbox_entries(ws))
    assert files_under(ws.inbox / "done") == ["take.1.txt", "take.1.wav", "take.txt", "take.wav"]
    assert (ws.inbox / "done" / "take.1.txt").read_text() == "tone 400"


@pytest.mark.parametrize("name,ignored", [
    (".DS_Store", True), (".sb-1234-abcd", True), ("~$terms.txt", True), ("terms.txt.swp", True),
    ("take.wav.part", True), (".#terms.txt", True), ("take.wav.crdownload", True), ("done", True),
    ("terms.txt", False), ("take.wav", False), ("Take 2.m4a", False),
])
def test_editor_and_download_temp_names_are_ignored(name, ignored):
    assert is_ignored(name) is ignored


# --- the watcher, with a real observer ----------------------------------------------------------

FAST = Timing(debounce=0.4, pair_wait=1.5, settle=0.5, tick=0.05, rescan=60.0)
WAIT_S = 10.0  # how long a watcher test waits for the watcher to hand files over


class Collector:
    """on_ready handler: records what the watcher handed over and moves it out, like the daemon."""

    def __init__(self, ws):
        self.ws, self.batches, self.event = ws, [], threading.Event()

    def __call__(self, paths):
        self.batches.append(sorted(p.name for p in paths))
        done = self.ws.inbox / "done"
        done.mkdir(exist_ok=True)
        for p in paths:
            os.rename(p, done / p.name)
        self.event.set()

    def names(self):
        return [n for batch in self.batches for n in batch]


@pytest.fixture
def watched(ws):
    collector = Collector(ws)
    watcher = InboxWatcher(ws, collector, FAST)
    watcher.start()
    yield ws, watcher, collector
    watcher.stop()


def test_half_written_file_waits_until_the_writer_closes_it(watched, tmp_path):
    ws, watcher, collector = watched
    data = tone(tmp_path / "src.wav", 2.0).read_bytes()
    with open(ws.inbox / "take.wav", "wb") as f:
        f.write(data[: len(data) // 2])
        f.flush()
        time.sleep(FAST.debounce * 5)  # size and mtime long stable, but the file is still open
        assert collector.names() == [] and watcher.busy()
        f.write(data[len(data) // 2:])
    wait_until(lambda: collector.names() == ["take.wav"], "the watcher to hand over take.wav once closed",
               timeout=WAIT_S)
    assert (ws.inbox / "done" / "take.wav").read_bytes() == data


def test_file_still_growing_is_not_handed_over(watched):
    ws, watcher, collector = watched
    path = ws.inbox / "slow.txt"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    os.close(fd)  # closed between writes, like a downloader appending in chunks
    for i in range(8):
        with open(path, "a") as f:
            f.write(f"term{i}\n")
        time.sleep(FAST.debounce / 3)
        assert collector.names() == []
    wait_until(lambda: collector.names() == ["slow.txt"], "the watcher to hand over slow.txt once it stops growing",
               timeout=WAIT_S)


def test_editor_temp_file_renamed_into_place_counts_as_created(watched):
    ws, watcher, collector = watched
    tmp = ws.inbox / ".sb-terms-xyz"
    tmp.write_text("PBX\n", encoding="utf-8")
    (ws.inbox / "terms.txt.swp").write_text("swap", encoding="utf-8")
    os.rename(tmp, ws.inbox / "terms.txt")
    wait_until(lambda: collector.names() == ["terms.txt"], "the watcher to hand over terms.txt", timeout=WAIT_S)
    time.sleep(FAST.debounce * 2)
    assert collector.names() == ["terms.txt"]
    assert (ws.inbox / "terms.txt.swp").exists()  # never touched


def test_move_from_outside_counts_as_created(watched, tmp_path):
    ws, watcher, collector = watched
    outside = tone(tmp_path / "voice.wav", 3.0)
    os.rename(outside, ws.inbox / "voice.wav")
    wait_until(lambda: collector.names() == ["voice.wav"], "the watcher to hand over voice.wav", timeout=WAIT_S)


def test_recording_and_transcript_are_handed_over_together(watched, tmp_path):
    ws, watcher, collector = watched
    tone(ws.inbox / "take.wav")
    time.sleep(FAST.debounce * 0.6)
    (ws.inbox / "take.txt").write_text("the pound key", encoding="utf-8")
    wait_until(lambda: collector.batches, "the watcher to hand over a batch", timeout=WAIT_S)
    assert collector.batches == [["take.txt", "take.wav"]]


def test_a_transcript_waits_for_its_recording_instead_of_becoming_a_jargon_list(watched):
    ws, watcher, collector = watched
    (ws.inbox / "take.txt").write_text("please press the pound key", encoding="utf-8")
    time.sleep(FAST.debounce * 2)  # longer than the debounce: the copy of the audio is still on its way
    assert collector.names() == []
    tone(ws.inbox / "take.wav")
    wait_until(lambda: collector.batches, "the watcher to hand over a batch", timeout=WAIT_S)
    assert collector.batches == [["take.txt", "take.wav"]]


def test_files_present_at_start_are_picked_up(ws):
    (ws.inbox / "terms.txt").write_text("PBX\n", encoding="utf-8")
    collector = Collector(ws)
    watcher = InboxWatcher(ws, collector, FAST)
    watcher.start()
    try:
        wait_until(lambda: collector.names() == ["terms.txt"], "the watcher to hand over terms.txt", timeout=WAIT_S)
    finally:
        watcher.stop()


# --- when is there new material to train on? ------------------------------------------------------

def test_new_material_counts_chains_started_outside_the_daemon(ws):
    from daemon_pipeline import PIPELINE
    from vocabd.daemon.material import new_material, untrained_items

    assert not new_material(ws)
    (ws.inbox / "terms.txt").write_text("PBX\n", encoding="utf-8")
    handle(ws, inbox_entries(ws))
    assert new_material(ws)
    assert [i["files"] for i in untrained_items(ws)] == [["terms.txt"]]
    PIPELINE.start(ws)  # as `vocabd run --foreground` would: the chain record keeps the counter
    assert not new_material(ws) and untrained_items(ws) == []
    (ws.inbox / "more.txt").write_text("kubectl\n", encoding="utf-8")
    handle(ws, inbox_entries(ws))
    assert new_material(ws)
    assert [i["files"] for i in untrained_items(ws)] == [["more.txt"]]


def test_material_placed_in_data_by_hand_counts(ws):
    from vocabd.daemon.material import new_material

    (ws.data / "jargon.txt").write_text("PBX\n", encoding="utf-8")
    assert new_material(ws)


def test_watcher_falls_back_to_polling_when_inotify_is_exhausted(ws, monkeypatch):
    from vocabd.daemon import watcher as watcher_module

    class NoWatchesLeft(watcher_module.Observer):
        def schedule(self, *args, **kwargs):
            raise OSError(28, "inotify watch limit reached")

    monkeypatch.setattr(watcher_module, "Observer", NoWatchesLeft)
    collector = Collector(ws)
    watcher = InboxWatcher(ws, collector, FAST)
    watcher.start()
    try:
        assert isinstance(watcher._observer, watcher_module.PollingObserver)
        (ws.inbox / "terms.txt").write_text("PBX\n", encoding="utf-8")
        wait_until(lambda: collector.names() == ["terms.txt"], "the watcher to hand over terms.txt", timeout=WAIT_S)
    finally:
        watcher.stop()


def test_huge_audio_is_refused_before_decoding(ws):
    with open(ws.inbox / "meeting.wav", "wb") as f:
        f.truncate(drops.MAX_AUDIO_BYTES + 1)  # sparse: no disk used
    [outcome] = handle(ws, inbox_entries(ws))
    assert outcome.status == "rejected" and "far too large" in outcome.message
