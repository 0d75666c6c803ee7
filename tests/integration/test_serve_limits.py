"""`vocabd serve` against hostile clients: the real server on a free loopback port, raw sockets and real multipart
requests. Every loop here is bounded and every server stops by itself at the end of its test."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import tracemalloc
import uuid
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tiny import tiny_workspace_config
from vocabd.audio import write_wav
from vocabd.workspace import init_workspace, open_workspace


@pytest.fixture
def workspace(tiny_model, tmp_path):
    ws = init_workspace(tmp_path / "ws")
    ws.config_file.write_text(tiny_workspace_config(tiny_model))
    return open_workspace(ws.root)


def start(workspace, host: str = "127.0.0.1", token: str | None = None, **limits):
    from vocabd.serve.server import Limits, make_server
    from vocabd.serve.worker import ModelWorker

    worker = ModelWorker(workspace)
    srv = make_server(worker, host, 0, token, Limits(**limits))
    worker.start()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture
def serving(workspace):
    servers = []

    def run(**kwargs):
        servers.append(start(workspace, **kwargs))
        return servers[-1]

    yield run
    for srv in servers:
        srv.shutdown()
        srv.server_close()
        srv.worker.stop()


def get(port: int, path: str = "/health", host: str | None = None, token: str | None = None, address="127.0.0.1"):
    conn = http.client.HTTPConnection(address, port, timeout=30)
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    if host is not None:
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", host)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
    else:
        conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, body


# --- Host header (DNS rebinding) ---------------------------------------------------------------------


def test_a_loopback_server_answers_only_its_own_host_names(serving):
    port = serving().server_address[1]
    for host in ("localhost", f"localhost:{port}", f"127.0.0.1:{port}", "127.0.0.1", f"[::1]:{port}", "LOCALHOST"):
        assert get(port, host=host)[0] == 200, host
    for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1.evil.example:{port}", "localhost.evil",
                 f"attacker.test:{port}", "", "[::1"):
        status, body = get(port, host=host)
        assert status == 403, host
        assert "Host" in json.loads(body)["error"]["message"]


def test_a_server_opened_with_host_answers_other_names(serving):
    srv = serving(host="0.0.0.0", token="s3cret")
    port = srv.server_address[1]
    assert get(port, host=f"myhost.lan:{port}", token="s3cret")[0] == 200


# --- slow clients ------------------------------------------------------------------------------------


def trickle(port: int, lines: list[bytes], every: float, give_up: float) -> float | None:
    """Send `lines` one every `every` s; seconds until the server closed the connection (None: it never did)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=every) as s:
        for line in lines:
            try:
                s.sendall(line)
                if s.recv(4096) == b"":
                    return time.monotonic() - started
            except TimeoutError:
                pass
            except (ConnectionResetError, BrokenPipeError):
                return time.monotonic() - started
            if time.monotonic() - started > give_up:
                return None
    return None


def test_a_client_trickling_its_header_is_dropped(serving):
    port = serving(header_seconds=2.0).server_address[1]
    lines = [b"GET /health HTTP/1.1\r\n"] + [f"X-Slow-{i}: 1\r\n".encode() for i in range(40)]
    closed = trickle(port, lines, every=0.5, give_up=15.0)
    assert closed is not None and closed < 6.0, closed


def test_a_client_trickling_its_body_is_dropped(serving):
    port = serving(header_seconds=2.0, body_grace_seconds=2.0, body_min_rate=50_000).server_address[1]
    head = (f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000\r\n"
            f"Content-Type: multipart/form-data; boundary=x\r\n\r\n").encode()
    closed = trickle(port, [head] + [b"-" * 100] * 40, every=0.5, give_up=15.0)
    assert closed is not None and closed < 8.0, closed


def test_real_requests_are_answered_while_slow_clients_hold_every_connection(serving):
    port = serving(header_seconds=2.0, max_connections=4).server_address[1]
    holders = []
    for _ in range(12):  # three times the limit, each sending a header line now and then
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /health HTTP/1.1\r\nX-Slow: 1\r\n")
        holders.append(s)
    try:
        started = time.monotonic()
        status, _ = get(port)
        assert status in (200, 503) and time.monotonic() - started < 10.0
        deadline = time.monotonic() + 20.0
        while get(port)[0] != 200:
            assert time.monotonic() < deadline, "never answered with 200 while slow clients held the connections"
            time.sleep(0.2)
    finally:
        for s in holders:
            s.close()


# --- the work one request causes ------------------------------------------------------------------


def form(parts: list[tuple[str, str | None, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    chunks = []
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        chunks.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(chunks) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def post(port: int, body: bytes, content_type: str, timeout: float = 120.0) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("POST", "/v1/audio/transcriptions", body=body, headers={"Content-Type": content_type})
    response = conn.getresponse()
    answer = json.loads(response.read() or b"{}")
    conn.close()
    return response.status, answer


def test_a_form_with_many_parts_is_refused_quickly(serving):
    port = serving(max_bytes=25 * 1024 * 1024).server_address[1]
    body, content_type = form([(f"f{i}", None, b"x") for i in range(200_000)])
    started = time.monotonic()
    status, answer = post(port, body, content_type)
    assert status == 400 and "parts" in answer["error"]["message"], answer
    assert time.monotonic() - started < 10.0


def test_a_well_formed_upload_is_still_transcribed(serving, tmp_path):
    port = serving().server_address[1]
    t = np.arange(16000 * 2) / 16000
    write_wav(tmp_path / "a.wav", (0.2 * np.sin(2 * np.pi * 200 * t)).astype(np.float32))
    body, content_type = form([("model", None, b"vocabd"), ("response_format", None, b"json"),
                               ("file", "a.wav", (tmp_path / "a.wav").read_bytes())])
    status, answer = post(port, body, content_type)
    assert status == 200 and "text" in answer, answer


def test_memory_is_bounded_under_many_concurrent_large_uploads(serving, tmp_path):
    """Twenty 5 MB uploads at once (each a WAV too long for the server): the bodies are spooled to disk and
    parsed two at a time, so the Python heap never holds more than a few of them."""
    size = 5 * 1024 * 1024
    port = serving(max_bytes=size + 4096, upload_slots=2).server_address[1]
    write_wav(tmp_path / "long.wav", np.zeros((size - 100) // 2, np.float32))
    body, content_type = form([("file", "long.wav", (tmp_path / "long.wav").read_bytes())])
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(lambda _: post(port, body, content_type), range(20)))
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert {status for status, _ in answers} == {413}, answers[:2]
    # the clients share one body; the server's heap holds at most its two slots' work
    assert peak < len(body) + 2 * 4 * size, peak / 2**20
