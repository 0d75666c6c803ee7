"""Hostile and broken drops: real files, the real inbox rules and,
where timing matters, the real watchdog observer handing entries to them as the daemon does."""

from __future__ import annotations

import os
import resource
import signal
import stat
import subprocess
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tiny import wait_until
from vocabd.audio import write_wav
from vocabd.inbox import ledger
from vocabd.inbox.drops import classify, handle, inbox_entries, ingest
from vocabd.daemon.status import inbox_status
from vocabd.daemon.watcher import InboxWatcher
from vocabd.errors import VocabdError
from vocabd.files import UnsafePath
from vocabd.timing import Timing

FAST = Timing(debounce=0.3, pair_wait=0.8, settle=0.5, tick=0.05, rescan=60.0, incomplete_hold=3.0)
WAIT_S = 15.0  # how long a watcher test waits for the inbox's outcomes


def speechlike(seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    return (0.2 * np.sin(2 * np.pi * 180 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def pair(folder: Path, stem: str, seconds: float = 1.0, text: str = "press the pound key", seed: int = 0) -> None:
    write_wav(folder / f"{stem}.wav", speechlike(seconds, seed=seed))
    (folder / f"{stem}.txt").write_text(text, encoding="utf-8")


class Inbox:
    """The daemon's inbox side: the real watcher handing ready entries to the real inbox rules."""

    def __init__(self, ws):
        self.ws, self.outcomes, self.errors = ws, [], []
        self.watcher = InboxWatcher(ws, self._on_ready, FAST)

    def _on_ready(self, paths):
        try:
            self.outcomes += handle(self.ws, paths)
        except Exception as e:
            self.errors.append(e)
            raise

    def statuses(self):
        return {shown.name: o.status for o in self.outcomes for shown in o.drop.files}


@pytest.fixture
def watched(ws):
    inbox = Inbox(ws)
    inbox.watcher.start()
    yield inbox
    inbox.watcher.stop()


def rows(ws) -> list[str]:
    out = []
    for name in ("my_voice_train", "my_voice_eval"):
        if ws.manifest(name).exists():
            out += ws.manifest(name).read_text(encoding="utf-8").splitlines()
    return out


# --- item 1: nothing written or moved through a link ------------------------------------------------


def test_a_link_planted_as_the_reason_file_is_not_written_through(watched, outside):
    ws, victim = watched.ws, outside / "victim.txt"
    (ws.inbox / "rejected").mkdir(exist_ok=True)
    os.symlink(victim, ws.inbox / "rejected" / "evil.txt.reason.txt")
    (ws.inbox / "evil.txt").write_bytes(b"")
    wait_until(lambda: watched.outcomes, "the inbox's first outcome", timeout=WAIT_S)
    assert victim.read_text(encoding="utf-8") == "precious\n"
    [outcome] = watched.outcomes
    assert outcome.status == "rejected"
    reasons = [p for p in (ws.inbox / "rejected").iterdir() if p.name.endswith(".reason.txt") and not p.is_symlink()]
    assert [p.read_text(encoding="utf-8").startswith("evil.txt: ") for p in reasons] == [True]


@pytest.mark.parametrize("folder", ["done", "rejected"])
def test_a_linked_done_or_rejected_folder_moves_nothing_out_of_the_workspace(ws, outside, folder):
    (ws.inbox / folder).rmdir() if (ws.inbox / folder).exists() else None
    os.symlink(outside, ws.inbox / folder)
    (ws.inbox / "terms.txt").write_text("PBX\n", encoding="utf-8")
    (ws.inbox / "bad.pdf").write_bytes(b"%PDF")
    with pytest.raises(UnsafePath, match=f"{folder} is a symbolic link"):
        handle(ws, inbox_entries(ws))
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]
    assert sorted(p.name for p in inbox_entries(ws)) == ["bad.pdf", "terms.txt"]
    assert not (ws.data / "jargon.txt").exists()
    with pytest.raises(VocabdError, match="cannot watch the inbox"):
        InboxWatcher(ws, lambda paths: None, FAST).start()


def test_workspace_files_planted_as_links_are_not_written_through(ws, outside):
    victim = outside / "victim.txt"
    os.symlink(victim, ws.manifest("my_voice_train"))
    os.symlink(victim, ws.manifest("my_voice_eval"))
    os.symlink(victim, ws.data / "jargon.txt")
    pair(ws.inbox, "take", text="hello there")
    (ws.inbox / "terms.txt").write_text("kubectl\n", encoding="utf-8")
    outcomes = {o.drop.kind: o for o in handle(ws, inbox_entries(ws))}
    assert victim.read_text(encoding="utf-8") == "precious\n"
    assert outcomes["recording"].status == "rejected" and "symbolic link" in outcomes["recording"].message
    assert not any((ws.data / "recordings").glob("*"))  # the copy it had made was taken back
    assert outcomes["jargon"].status == "rejected" and "jargon.txt is a symbolic link" in outcomes["jargon"].message


# --- item 8: links in the inbox are set aside unread ---------------------------------------------------


def test_a_linked_transcript_or_list_is_set_aside_unread(watched, outside):
    ws = watched.ws
    secret = outside / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    os.symlink(secret, ws.inbox / "terms.txt")
    write_wav(outside / "a.wav", speechlike(1.0))
    os.symlink(outside / "a.wav", ws.inbox / "take.wav")
    (ws.inbox / "take.txt").write_text("press the pound key", encoding="utf-8")
    wait_until(lambda: len(watched.outcomes) >= 2, "the inbox's two outcomes", timeout=WAIT_S)
    assert not (ws.data / "jargon.txt").exists() and rows(ws) == []
    rejected = ws.inbox / "rejected"
    assert (rejected / "terms.txt").is_symlink() and secret.exists() and (outside / "a.wav").exists()
    assert "symbolic link" in (rejected / "terms.txt.reason.txt").read_text(encoding="utf-8")
    assert "symbolic link" in (rejected / "take.wav.reason.txt").read_text(encoding="utf-8")


def test_a_dangling_link_is_set_aside_not_waiting_forever(ws, outside):
    os.symlink(outside / "nothing-here.wav", ws.inbox / "ghost.wav")  # there before the daemon starts
    inbox = Inbox(ws)
    inbox.watcher.start()
    try:
        wait_until(lambda: inbox.outcomes, "the outcome of what lay in the inbox at start", timeout=WAIT_S)
        os.symlink(outside / "gone.txt", ws.inbox / "later.txt")  # and one dropped while it runs
        wait_until(lambda: len(inbox.outcomes) == 2, "the outcome of the file dropped later", timeout=WAIT_S)
    finally:
        inbox.watcher.stop()
    assert inbox_status(ws)["waiting"] == []
    assert {o.status for o in inbox.outcomes} == {"rejected"}
    assert (ws.inbox / "rejected" / "ghost.wav").is_symlink()


# --- item 5: a WAV/FLAC holding less than its header declares -------------------------------------------


def test_a_wav_copied_in_chunks_with_long_pauses_is_taken_whole(watched, tmp_path):
    ws = watched.ws
    write_wav(tmp_path / "src.wav", speechlike(2.5))
    data = (tmp_path / "src.wav").read_bytes()
    (ws.inbox / "take.txt").write_text("the whole transcript of two and a half seconds", encoding="utf-8")
    step = len(data) // 4
    for i in range(4):
        with open(ws.inbox / "take.wav", "ab") as f:  # closed between chunks, like a slow network copy
            f.write(data[i * step: len(data) if i == 3 else (i + 1) * step])
        if i < 3:
            time.sleep(FAST.debounce + FAST.pair_wait)  # each pause longer than any time-based wait
            assert watched.outcomes == []
    wait_until(lambda: watched.outcomes, "the inbox's first outcome", timeout=WAIT_S)
    [outcome] = watched.outcomes
    assert outcome.status == "done", outcome.message
    import json

    [row] = [json.loads(r) for r in rows(ws)]
    assert row["duration"] == pytest.approx(2.5, abs=0.01)


def test_a_truncated_wav_is_refused_after_waiting(watched, tmp_path):
    ws = watched.ws
    write_wav(tmp_path / "src.wav", speechlike(3.5))
    data = (tmp_path / "src.wav").read_bytes()
    (ws.inbox / "take.wav").write_bytes(data[: 20 * 1024])  # 20 of 112 KB
    (ws.inbox / "take.txt").write_text("a transcript for three and a half seconds", encoding="utf-8")
    time.sleep(FAST.pair_wait + 0.5)
    assert watched.outcomes == [] and watched.watcher.busy()  # waiting for the rest of the file
    wait_until(lambda: watched.outcomes, "an outcome once the incomplete hold is over",
               timeout=FAST.incomplete_hold + 5)
    [outcome] = watched.outcomes
    assert outcome.status == "rejected" and "declares 112000 bytes of audio" in outcome.message
    assert rows(ws) == []


def test_a_truncated_flac_is_refused(ws, tmp_path):
    sf.write(tmp_path / "src.flac", speechlike(3.0), 16000)
    data = (tmp_path / "src.flac").read_bytes()
    (ws.inbox / "take.flac").write_bytes(data[: len(data) * 2 // 3])
    (ws.inbox / "take.txt").write_text("press the pound key", encoding="utf-8")
    [outcome] = handle(ws, inbox_entries(ws))
    assert outcome.status == "rejected" and "declares 48000 samples" in outcome.message


# --- item 6: the length comes from the header, before decoding ---------------------------------------


def test_long_compressed_silence_is_refused_without_decoding(ws):
    """A 20-minute .ogg of a few hundred KB: decoding it would take ~110 MiB (an hour, 2.4 GB in the daemon)."""
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "1200",
                    "-c:a", "libvorbis", "-q:a", "0", str(ws.inbox / "meeting.ogg")], check=True, timeout=120)
    assert (ws.inbox / "meeting.ogg").stat().st_size < 512 * 1024
    (ws.inbox / "meeting.txt").write_text("twenty minutes of nothing", encoding="utf-8")
    tracemalloc.start()
    try:
        [outcome] = handle(ws, inbox_entries(ws))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert outcome.status == "rejected" and "1200.00 s long" in outcome.message
    assert peak < 16 * 2**20, f"{peak / 2**20:.0f} MiB allocated: the file was decoded"


# --- item 7: each drop on its own; nothing half done ------------------------------------------------------


def test_one_bad_drop_never_stops_the_batch(ws):
    long_name = "x" * 244 + ".pdf"  # its reason file's name would pass 255 bytes
    (ws.inbox / long_name).write_bytes(b"%PDF")
    os.close(os.open(os.fsencode(ws.inbox) + b"/caf\xe9.txt", os.O_WRONLY | os.O_CREAT))  # not UTF-8, empty
    with open(os.fsencode(ws.inbox) + b"/menu\xff.txt", "wb") as f:  # not UTF-8, a good list
        f.write(b"PBX\n")
    pair(ws.inbox, "take")
    outcomes = handle(ws, inbox_entries(ws))
    assert sorted(o.status for o in outcomes) == ["done", "done", "rejected", "rejected"]
    assert inbox_entries(ws) == []
    rejected = os.listdir(os.fsencode(ws.inbox / "rejected"))
    reasons = [n for n in rejected if n.endswith(b".reason.txt")]
    assert len(reasons) == 2 and all(len(n) <= 255 for n in reasons)
    texts = [(ws.inbox / "rejected" / os.fsdecode(n)).read_text(encoding="utf-8") for n in reasons]
    assert any(t.startswith(long_name + ": unsupported") for t in texts)
    assert any(t.startswith("caf\\xe9.txt: ") for t in texts)
    assert [i["files"] for i in ledger.read_state(ws)["items"] if i["kind"] == "jargon"] == [["menu\\xff.txt"]]


def test_names_that_are_not_utf8_go_through_the_watcher(watched):
    inbox = os.fsencode(watched.ws.inbox)
    with open(inbox + b"/t\xe9rms.txt", "wb") as f:
        f.write(b"PBX\n")
    with open(inbox + b"/n\xf6te.wav", "wb") as f:
        f.write(b"RIFF")
    wait_until(lambda: len(watched.outcomes) == 2, "the inbox's two outcomes", timeout=WAIT_S)
    assert sorted(o.status for o in watched.outcomes) == ["done", "rejected"] and watched.errors == []
    assert sorted(os.listdir(inbox)) == [b"done", b"rejected"]


def test_a_full_disk_leaves_no_half_ingest_and_the_batch_goes_on(ws):
    pair(ws.inbox, "big", seconds=20.0)  # its 16 kHz copy needs 640 KB
    (ws.inbox / "terms.txt").write_text("PBX\n", encoding="utf-8")
    old_limit, old_handler = resource.getrlimit(resource.RLIMIT_FSIZE), signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, old_limit[1]))  # writes past 256 KB fail (EFBIG)
    try:
        outcomes = {o.drop.kind: o for o in handle(ws, inbox_entries(ws))}
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    assert outcomes["recording"].status == "rejected" and "could not be stored" in outcomes["recording"].message
    assert outcomes["jargon"].status == "done"
    assert list((ws.data / "recordings").glob("*")) == [] and rows(ws) == []  # no .part, no copy, no row
    assert [i["kind"] for i in ledger.read_state(ws)["items"]] == ["jargon"]
    assert "could not be stored" in (ws.inbox / "rejected" / "big.wav.reason.txt").read_text(encoding="utf-8")
    assert (ws.inbox / "rejected" / "big.txt").exists()  # the transcript went with it: no jargon list later


def test_a_transcript_whose_recording_vanished_is_not_taken_as_a_jargon_list(ws):
    pair(ws.inbox, "take", text="please press the pound key")
    ready = inbox_entries(ws)  # the watcher found the pair complete ...
    (ws.inbox / "take.wav").unlink()  # ... and the recording was deleted before it was read
    [outcome] = handle(ws, ready)
    assert outcome.status == "rejected" and "its recording take.wav left the inbox" in outcome.message
    assert not (ws.data / "jargon.txt").exists() and (ws.inbox / "rejected" / "take.txt").exists()


def test_a_recording_deleted_after_it_was_classified_takes_its_transcript_along(ws):
    pair(ws.inbox, "take", text="please press the pound key")
    [drop] = classify(inbox_entries(ws))
    (ws.inbox / "take.wav").unlink()  # gone between the look and the read
    outcome = ingest(ws, drop)
    assert outcome.status == "rejected" and "take.wav left the inbox before it was read" in outcome.message
    assert inbox_entries(ws) == [] and (ws.inbox / "rejected" / "take.txt").exists()
    assert not (ws.data / "jargon.txt").exists() and rows(ws) == []


# --- item 9: private drops stay private ----------------------------------------------------------------


def test_copies_keep_the_drops_permission_bits(ws):
    old = os.umask(0o022)
    try:
        pair(ws.inbox, "take", text="a private note")
        pair(ws.inbox, "meeting", seconds=31.0, text="a long private note", seed=2)  # kept to be split
        write_wav(ws.inbox / "voice.wav", speechlike(3.0, seed=1))
        (ws.inbox / "voice.txt").write_text("my voice", encoding="utf-8")
        (ws.inbox / "terms.txt").write_text("PBX\n", encoding="utf-8")
        for p in inbox_entries(ws):
            os.chmod(p, 0o600)
        outcomes = handle(ws, inbox_entries(ws))
    finally:
        os.umask(old)
    assert {o.status for o in outcomes} == {"done"}
    written = [*(ws.data / "recordings").glob("*.wav"), *(ws.data / "recordings" / "long").iterdir(),
               ws.manifest("my_voice_train"), ws.data / "long_recordings.jsonl", ws.data / "voice_ref.wav",
               ws.data / "voice_ref.txt", ws.data / "jargon.txt"]
    assert len(written) == 7
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in written} == {p.name: "0o600" for p in written}


# --- one recording, two roles -------------------------------------------------------


def test_the_same_audio_may_be_the_voice_sample_and_a_recording(ws):
    write_wav(ws.inbox / "voice.wav", speechlike(4.0))
    (ws.inbox / "note1.wav").write_bytes((ws.inbox / "voice.wav").read_bytes())
    (ws.inbox / "note1.txt").write_text("this is my voice", encoding="utf-8")
    outcomes = handle(ws, inbox_entries(ws))
    assert sorted((o.drop.kind, o.status) for o in outcomes) == [("recording", "done"), ("voice", "done")]
    assert (ws.data / "voice_ref.wav").exists() and len(rows(ws)) == 1
    (ws.inbox / "again.wav").write_bytes((ws.inbox / "done" / "voice.wav").read_bytes())
    [again] = handle(ws, inbox_entries(ws))  # a third copy in a role it already has is still a duplicate
    assert again.status == "duplicate"
