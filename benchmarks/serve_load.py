"""`vocabd serve` under load: peak memory and a normal request's latency while 50 clients upload 25 MB at once and
slow clients trickle their headers and bodies.

Starts `vocabd serve` on 127.0.0.1 for a fresh default workspace (the real offline base model), as a user would.
Of the 50 uploads, UPLOADS_DECODED are 25 MB WAVs of 91 s (48 kHz stereo 24-bit: decoded and transcribed); the
rest are 25 MB WAVs of 13.6 min (16 kHz mono), refused with a 413 once their body and form are read. Run under
the heavy lock:

    flock /tmp/vocabd-heavy.lock .venv/bin/python benchmarks/serve_load.py [--model FOLDER]

`--model` serves another base model (a tiny one separates what the uploads cost from what the model costs).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

UPLOADS, UPLOADS_DECODED, SLOW_HEADERS, SLOW_BODIES = 50, 2, 20, 5
SIZE = 25 * 1024 * 1024 - 4096


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wav_bytes(seconds: float, rate: int, channels: int, subtype: str) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.2 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 0.3 * t) > 0)  # tone with pauses
    path = Path(tempfile.mkstemp(suffix=".wav")[1])
    sf.write(path, np.repeat(mono[:, None], channels, axis=1), rate, subtype=subtype)
    data = path.read_bytes()
    path.unlink()
    return data


def form(filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n\r\n'.encode()
            + data + f"\r\n--{boundary}--\r\n".encode())
    return body, f"multipart/form-data; boundary={boundary}"


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
            timeout: float = 600) -> tuple[int, float]:
    """(status, seconds) of one request; status -1 when the connection failed."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    except OSError:
        return -1, time.monotonic() - started
    finally:
        conn.close()


def post(port: int, body: bytes, content_type: str) -> tuple[int, float]:
    return request(port, "POST", "/v1/audio/transcriptions", body, {"Content-Type": content_type})


def get_health(port: int) -> tuple[int, float]:
    return request(port, "GET", "/health", timeout=120)


def slow_client(port: int, head: bytes, trickle: bytes, every: float, limit: float, dropped: list) -> None:
    """Sends `head`, then `trickle` every `every` s; records when the server closed the connection."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=every) as s:
        s.sendall(head)
        while time.monotonic() - started < limit:
            try:
                s.sendall(trickle)
                if s.recv(4096) == b"":
                    break
            except TimeoutError:
                continue
            except OSError:
                break
    dropped.append(time.monotonic() - started)


def memory(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) // 1024  # MiB
    return fields


def sample_peak(pid: int, stop: threading.Event, peak: list[int]) -> None:
    while not stop.wait(0.05):
        peak[0] = max(peak[0], memory(pid)["VmRSS"])


def main(model: str | None) -> None:
    root = Path(tempfile.mkdtemp(prefix="vocabd-serve-load-"))
    ws, port = root / "ws", free_port()
    subprocess.run([sys.executable, "-m", "vocabd", "init", str(ws)], check=True, capture_output=True)
    if model:
        (ws / "vocabd.toml").write_text(f'[model]\nbase = "{model}"\n')
    server = subprocess.Popen([sys.executable, "-m", "vocabd", "serve", "-w", str(ws), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=open(root / "serve.log", "wb"))
    try:
        deadline = time.monotonic() + 300
        while get_health(port)[0] != 200:
            assert time.monotonic() < deadline and server.poll() is None, "serve did not start"
            time.sleep(0.5)
        loaded = memory(server.pid)
        long_body = form("long.wav", wav_bytes(SIZE / 32000 - 1, 16000, 1, "PCM_16"))
        decoded_body = form("take.wav", wav_bytes(SIZE / 288000 - 1, 48000, 2, "PCM_24"))
        small_body = form("short.wav", wav_bytes(3.0, 16000, 1, "PCM_16"))
        baseline = [post(port, *small_body)[1], get_health(port)[1]]
        stop, peak = threading.Event(), [loaded["VmRSS"]]
        threading.Thread(target=sample_peak, args=(server.pid, stop, peak), daemon=True).start()
        dropped_heads: list[float] = []
        dropped_bodies: list[float] = []
        slow = [threading.Thread(target=slow_client, args=(port, b"GET /health HTTP/1.1\r\n", b"X-Slow: 1\r\n", 2.0,
                                                           120, dropped_heads)) for _ in range(SLOW_HEADERS)]
        body_head = (b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: localhost\r\nContent-Length: 20000000\r\n"
                     b"Content-Type: multipart/form-data; boundary=x\r\n\r\n")
        slow += [threading.Thread(target=slow_client, args=(port, body_head, b"x" * 1000, 1.0, 120, dropped_bodies))
                 for _ in range(SLOW_BODIES)]
        for thread in slow:
            thread.start()
        started = time.monotonic()
        with ThreadPoolExecutor(UPLOADS) as pool:
            bodies = [decoded_body] * UPLOADS_DECODED + [long_body] * (UPLOADS - UPLOADS_DECODED)
            uploads = [pool.submit(post, port, *body) for body in bodies]
            time.sleep(1.0)
            during = {"health": get_health(port), "short_post": post(port, *small_body)}
            answers = [u.result() for u in uploads]
        load_seconds = time.monotonic() - started
        for thread in slow:
            thread.join(timeout=150)
        stop.set()
        statuses: dict[int, int] = {}
        for status, _ in answers:
            statuses[status] = statuses.get(status, 0) + 1
        print(json.dumps({
            "rss_after_model_load_mib": loaded["VmRSS"], "peak_rss_under_load_mib": peak[0],
            "peak_rss_ever_mib": memory(server.pid)["VmHWM"],
            "upload_statuses": statuses, "uploads_seconds": round(load_seconds, 1),
            "slowest_upload_s": round(max(s for _, s in answers), 1),
            "idle_short_post_s": round(baseline[0], 2), "idle_health_s": round(baseline[1], 3),
            "under_load_health": [during["health"][0], round(during["health"][1], 2)],
            "under_load_short_post": [during["short_post"][0], round(during["short_post"][1], 2)],
            "slow_header_clients_dropped_after_s": [round(min(dropped_heads), 1), round(max(dropped_heads), 1)],
            "slow_body_clients_dropped_after_s": [round(min(dropped_bodies), 1), round(max(dropped_bodies), 1)],
        }, indent=1))
    finally:
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main(sys.argv[sys.argv.index("--model") + 1] if "--model" in sys.argv else None)
