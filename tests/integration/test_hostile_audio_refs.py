"""Audio files that make ffmpeg read other files (HLS playlists, ffconcat lists, URL lists) dropped under an
audio name: real files, real ffmpeg, the real inbox rules and the real HTTP server."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from tiny import tiny_workspace_config
from vocabd.audio import write_wav
from vocabd.inbox.drops import handle, inbox_entries
from vocabd.workspace import init_workspace, open_workspace

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


def voice(seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.2 * np.sin(2 * np.pi * 180 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture
def outside(tmp_path) -> dict[str, Path]:
    """Real audio outside any workspace, in the formats an HLS playlist may name as its segments."""
    folder = tmp_path / "private"
    folder.mkdir()
    write_wav(folder / "secret.wav", voice())
    for suffix in (".flac", ".mp3"):
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(folder / "secret.wav"),
                        str(folder / f"secret{suffix}")], check=True)
    return {p.suffix: p for p in folder.iterdir()}


def playlists(outside: dict[str, Path]) -> dict[str, bytes]:
    """name -> content of each hostile file; all are small text files."""
    hls = {f"hls{s[1:]}": (f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:3.0,\n{p}\n#EXT-X-ENDLIST\n").encode()
           for s, p in outside.items()}
    hls["hls-url"] = (f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:3.0,\nfile:{outside['.flac']}\n"
                      "#EXT-X-ENDLIST\n").encode()
    return hls | {
        "concat": f"ffconcat version 1.0\nfile {outside['.wav']}\n".encode(),
        "concat-unsafe": f"ffconcat version 1.0\nfile file:{outside['.flac']}\nfile ../secret.flac\n".encode(),
        "urls": f"file:{outside['.wav']}\nfile://{outside['.flac']}\n".encode(),
    }


def test_the_hostile_files_are_what_they_claim(outside):
    """The HLS playlist pointing at a FLAC file outside really reads it through an ffprobe with no whitelist."""
    body = playlists(outside)["hlsflac"]
    path = outside[".flac"].parent / "x.m4a"
    path.write_bytes(body)
    probed = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                             str(path)], capture_output=True, text=True)
    assert float(probed.stdout) == pytest.approx(3.0, abs=0.1)


@pytest.mark.parametrize("suffix", [".m4a", ".mp3", ".ogg", ".wav", ".flac"])
def test_playlists_dropped_as_recordings_are_refused_with_a_reason(tmp_path, outside, suffix):
    ws = init_workspace(tmp_path / "ws")
    for stem, body in playlists(outside).items():
        (ws.inbox / f"{stem}{suffix}").write_bytes(body)
        (ws.inbox / f"{stem}.txt").write_text("press the pound key twice", encoding="utf-8")
    outcomes = handle(ws, inbox_entries(ws))
    assert {o.status for o in outcomes} == {"rejected"}, [(o.status, o.message) for o in outcomes]
    assert not any((ws.data / "recordings").glob("*")) and not ws.manifest("my_voice_train").exists()
    for stem in playlists(outside):
        reason = (ws.inbox / "rejected" / f"{stem}{suffix}.reason.txt").read_text(encoding="utf-8")
        assert reason.startswith(f"{stem}{suffix}: ") and "audio" in reason, reason
    hls = (ws.inbox / "rejected" / f"hlsflac{suffix}.reason.txt").read_text(encoding="utf-8")
    assert "hls" in hls and "refer to other files" in hls, hls


def test_a_playlist_dropped_as_the_voice_sample_is_refused(tmp_path, outside):
    ws = init_workspace(tmp_path / "ws")
    (ws.inbox / "voice.m4a").write_bytes(playlists(outside)["hlsflac"])
    [outcome] = handle(ws, inbox_entries(ws))
    assert outcome.status == "rejected" and "hls" in outcome.message, outcome.message
    assert not (ws.data / "voice_ref.wav").exists()


def test_real_audio_in_each_claimed_format_is_still_read(tmp_path, outside):
    ws = init_workspace(tmp_path / "ws")
    wav = outside[".wav"]
    for suffix, codec in ((".m4a", "aac"), (".ogg", "libvorbis"), (".mp3", "libmp3lame"), (".flac", "flac")):
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-c:a", codec,
                        str(ws.inbox / f"take{suffix[1:]}{suffix}")], check=True)
        (ws.inbox / f"take{suffix[1:]}.txt").write_text(f"a real {suffix[1:]} take", encoding="utf-8")
    outcomes = handle(ws, inbox_entries(ws))
    assert [o.status for o in outcomes] == ["done"] * 4, [o.message for o in outcomes]


# --- serve -------------------------------------------------------------------------------------------


@pytest.fixture
def server(tiny_model, tmp_path):
    from vocabd.serve.server import Limits, make_server
    from vocabd.serve.worker import ModelWorker

    ws = init_workspace(tmp_path / "ws")
    ws.config_file.write_text(tiny_workspace_config(tiny_model))
    worker = ModelWorker(open_workspace(ws.root))
    srv = make_server(worker, "127.0.0.1", 0, None, Limits(max_bytes=2_000_000, max_seconds=45.0))
    worker.start()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()
    worker.stop()


def test_serve_refuses_playlists_with_a_clear_400(server, outside):
    from test_serve import post

    for stem, body in playlists(outside).items():
        status, _, answer = post(server, {}, (f"{stem}.m4a", body))
        message = json.loads(answer)["error"]["message"]
        assert status == 400 and message.startswith(f"{stem}.m4a: "), (stem, status, message)
        assert "text" not in json.loads(answer)
    status, _, answer = post(server, {}, ("hls.m4a", playlists(outside)["hlsmp3"]))
    assert "hls" in json.loads(answer)["error"]["message"]
    status, _, answer = post(server, {}, ("real.flac", outside[".flac"].read_bytes()))
    assert status == 200, answer
