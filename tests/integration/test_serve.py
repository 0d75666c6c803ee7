"""`vocabd serve`: the real HTTP server on a free loopback port, the tiny model, real multipart requests."""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tiny import speech_wav, tiny_workspace_config


def multipart(fields: dict[str, str], file: tuple[str, bytes] | None) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    chunks = []
    for name, value in fields.items():
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    if file is not None:
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file[0]}"\r\n'
                      f"Content-Type: application/octet-stream\r\n\r\n".encode() + file[1] + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def post(url: str, fields: dict[str, str], file: tuple[str, bytes] | None, token: str | None = None):
    body, content_type = multipart(fields, file)
    request = urllib.request.Request(url + "/v1/audio/transcriptions", data=body, method="POST",
                                     headers={"Content-Type": content_type})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


@pytest.fixture(scope="module")
def wavs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("speech")
    return {"short": speech_wav(folder / "short.wav", "send the report today"),
            "other": speech_wav(folder / "other.wav", "the meeting moved to three o'clock")}


@pytest.fixture()
def workspace(tiny_model, tmp_path):
    from vocabd.workspace import init_workspace

    ws = init_workspace(tmp_path / "ws")
    ws.config_file.write_text(tiny_workspace_config(tiny_model))
    from vocabd.workspace import open_workspace

    return open_workspace(ws.root)


@pytest.fixture()
def server(workspace):
    from vocabd.serve.server import Limits, make_server
    from vocabd.serve.worker import ModelWorker

    worker = ModelWorker(workspace)
    srv = make_server(worker, "127.0.0.1", 0, None, Limits(max_bytes=2_000_000, max_seconds=45.0))
    worker.start()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()
    worker.stop()


def expected_text(model: Path, wav: Path, adapter: Path | None = None) -> str:
    """What `vocabd transcribe` writes with the default settings (the test workspaces have no jargon list)."""
    from vocabd.asr.biasing import configured_decoding
    from vocabd.asr.model import load_asr
    from vocabd.asr.transcribe import transcribe
    from vocabd.audio import load_audio
    from vocabd.config import Config

    return transcribe(configured_decoding(load_asr(model, adapter), [], Config()), [load_audio(wav)])[0]


def test_json_text_and_verbose_json(server, wavs, tiny_model):
    _, url = server
    want = expected_text(tiny_model, wavs["short"])
    data = wavs["short"].read_bytes()
    status, headers, body = post(url, {"model": "whisper-1"}, ("short.wav", data))
    assert status == 200 and json.loads(body) == {"text": want}
    assert headers["X-Vocabd-Model"] == "base"
    status, headers, body = post(url, {"response_format": "text"}, ("short.wav", data))
    assert status == 200 and body.decode() == want + "\n" and headers["Content-Type"].startswith("text/plain")
    status, _, body = post(url, {"response_format": "verbose_json", "language": "en"}, ("short.wav", data))
    verbose = json.loads(body)
    assert status == 200 and verbose["text"] == want and verbose["language"] == "english"
    assert abs(verbose["duration"] - len(np.frombuffer(data[44:], np.int16)) / 16000) < 0.05


def test_bad_requests_get_clear_4xx_errors(server, wavs, tmp_path):
    from vocabd.audio import write_wav

    _, url = server
    cases = []
    cases.append((post(url, {"model": "x"}, None), 400, "no 'file' field"))
    cases.append((post(url, {}, ("notes.wav", b"this is not audio")), 400, "not a readable audio file"))
    cases.append((post(url, {}, ("empty.wav", b"")), 400, "empty"))
    cases.append((post(url, {"response_format": "xml"}, ("a.wav", wavs["short"].read_bytes())), 400, "xml"))
    cases.append((post(url, {"language": "fr"}, ("a.wav", wavs["short"].read_bytes())), 400, "English only"))
    long = tmp_path / "long.wav"
    write_wav(long, np.zeros(16000 * 50, np.float32))  # 50 s > the 45 s limit, 1.6 MB < the byte limit
    cases.append((post(url, {}, ("long.wav", long.read_bytes())), 413, "50.0 s of audio"))
    cases.append((post(url, {}, ("big.wav", b"\0" * 2_100_000)), 413, "at most 2000000 bytes"))
    for (status, _, body), want_status, words in cases:
        error = json.loads(body)["error"]
        assert status == want_status and words in error["message"], (status, error)
    request = urllib.request.Request(url + "/v1/audio/transcriptions", data=b"x=1", method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 400 and "multipart/form-data" in json.loads(refused.value.read())["error"]["message"]
    with urllib.request.urlopen(url + "/v1/models", timeout=30) as response:  # still serving after all that
        assert json.loads(response.read())["data"][0]["id"] == "vocabd"


def test_concurrent_requests_all_answered_in_order(server, wavs, tiny_model):
    _, url = server
    want = {name: expected_text(tiny_model, path) for name, path in wavs.items()}
    names = ["short", "other"] * 4
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda n: post(url, {}, (f"{n}.wav", wavs[n].read_bytes())), names))
    assert [json.loads(body)["text"] for _, _, body in results] == [want[n] for n in names]


def test_switches_to_a_newly_promoted_adapter_without_restart(server, workspace, wavs, tiny_model, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import MoonshineForConditionalGeneration

    _, url = server
    torch.manual_seed(3)
    net = MoonshineForConditionalGeneration.from_pretrained(tiny_model)
    lora = LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj", "fc1", "fc2"], init_lora_weights=False)
    best = workspace.runs / "me-2" / "best"
    get_peft_model(net, lora).save_pretrained(best)
    want = expected_text(tiny_model, wavs["short"], best)
    assert want != expected_text(tiny_model, wavs["short"])  # the adapter really changes the output
    tmp = workspace.data / "active.json.tmp"
    tmp.write_text(json.dumps({"adapter": "runs/me-2/best", "adapter_path": str(best), "model": str(tiny_model),
                               "experiment": "me-2"}))
    tmp.replace(workspace.data / "active.json")  # as the gate writes it: atomically
    deadline = time.monotonic() + 30
    while True:
        status, headers, body = post(url, {}, ("short.wav", wavs["short"].read_bytes()))
        if headers["X-Vocabd-Model"] == "me-2" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == 200 and headers["X-Vocabd-Model"] == "me-2" and json.loads(body)["text"] == want


def test_token_required_off_loopback_and_checked(workspace, wavs):
    from vocabd.errors import VocabdError
    from vocabd.serve.server import Limits, check_binding, make_server
    from vocabd.serve.worker import ModelWorker

    with pytest.raises(VocabdError, match="token"):
        check_binding("0.0.0.0", None)
    check_binding("::1", None)
    worker = ModelWorker(workspace)
    srv = make_server(worker, "127.0.0.1", 0, "s3cret", Limits())
    worker.start()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        assert post(url, {}, ("a.wav", wavs["short"].read_bytes()))[0] == 401
        assert post(url, {}, ("a.wav", wavs["short"].read_bytes()), token="wrong")[0] == 401
        assert post(url, {}, ("a.wav", wavs["short"].read_bytes()), token="s3cret")[0] == 200
    finally:
        srv.shutdown()
        srv.server_close()
        worker.stop()


def test_cli_serve_process_answers_and_stops_on_sigterm(workspace, wavs, tmp_path):
    import os
    import signal
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    child = subprocess.Popen([sys.executable, "-P", "-m", "vocabd", "serve", "--port", str(port), "-w",
                              str(workspace.root)], stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url + "/health", timeout=5) as response:
                    assert json.loads(response.read())["status"] == "ok"
                break
            except OSError:
                assert child.poll() is None, child.stderr.read()
                time.sleep(0.5)
        status, _, body = post(url, {"response_format": "json"}, ("short.wav", wavs["short"].read_bytes()))
        assert status == 200 and "text" in json.loads(body)
    finally:
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=30) == 0
    assert "base URL http://127.0.0.1" in child.stderr.read()


def test_audio_over_30_s_is_cut_in_its_pauses_into_segments(server, wavs, tmp_path):
    from vocabd.audio import load_audio, write_wav

    _, url = server
    pause = np.zeros(8000, np.float32)
    speech = [load_audio(wavs["short"]), pause, load_audio(wavs["other"]), pause]
    audio = np.concatenate(speech * 12)[: 16000 * 40]
    long = tmp_path / "dictation.wav"
    write_wav(long, audio)
    status, _, body = post(url, {"response_format": "verbose_json"}, ("dictation.wav", long.read_bytes()))
    verbose = json.loads(body)
    assert status == 200 and abs(verbose["duration"] - 40) < 0.01
    segments = verbose["segments"]
    assert len(segments) >= 2 and all(s["end"] - s["start"] <= 30 for s in segments)
    assert verbose["text"] == " ".join(s["text"] for s in segments)
    status, _, srt = post(url, {"response_format": "srt"}, ("dictation.wav", long.read_bytes()))
    assert status == 200 and srt.decode().count(" --> ") == len(segments)
