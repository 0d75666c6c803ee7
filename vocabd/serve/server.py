"""The HTTP side: `POST /v1/audio/transcriptions` as the OpenAI audio API has it, `GET /v1/models`, `GET /health`."""

from __future__ import annotations

import hmac
import ipaddress
import json
import socket
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from vocabd.errors import VocabdError
from vocabd.log import get_logger
from vocabd.serve.multipart import FormError, parse_form
from vocabd.serve.upload import UploadError, decode_upload
from vocabd.serve.worker import Busy, ModelWorker

log = get_logger("vocabd.serve")

MODEL_ID = "vocabd"
FORMATS = ("json", "text", "verbose_json", "srt", "vtt")
ENGLISH = {"", "en", "english"}
DISCARD_LIMIT_FACTOR = 4  # an oversized body up to 4x the limit is read and dropped before the 413


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 25 * 1024 * 1024  # the OpenAI API's upload limit
    max_seconds: float = 120.0  # longer than 30 s: cut in pauses and transcribed piece by piece
    timeout_seconds: float = 300.0  # waiting in the queue plus transcription


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.kind = status, kind


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def timestamp(seconds: float, comma: bool) -> str:
    ms = int(round(seconds * 1000))
    text = f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"
    return text.replace(".", ",") if comma else text


def render(segments: list[tuple[float, float, str]], fmt: str, seconds: float) -> tuple[str, bytes]:
    """(content type, body) of one transcript, as (start, end, text) pieces, in an OpenAI response format."""
    text = " ".join(piece for _, _, piece in segments)
    if fmt == "text":
        return "text/plain; charset=utf-8", (text + "\n").encode()
    if fmt == "srt":
        body = "".join(f"{i}\n{timestamp(a, True)} --> {timestamp(b, True)}\n{piece}\n\n"
                       for i, (a, b, piece) in enumerate(segments, start=1))
        return "text/plain; charset=utf-8", body.encode()
    if fmt == "vtt":
        body = "WEBVTT\n\n" + "".join(f"{timestamp(a, False)} --> {timestamp(b, False)}\n{piece}\n\n"
                                       for a, b, piece in segments)
        return "text/vtt; charset=utf-8", body.encode()
    if fmt == "verbose_json":
        data = {"task": "transcribe", "language": "english", "duration": round(seconds, 3), "text": text,
                "segments": [{"id": i, "seek": 0, "start": round(a, 3), "end": round(b, 3), "text": piece,
                              "tokens": [], "temperature": 0.0, "avg_logprob": None, "compression_ratio": None,
                              "no_speech_prob": None} for i, (a, b, piece) in enumerate(segments)]}
    else:
        data = {"text": text}
    return "application/json", json.dumps(data, ensure_ascii=False).encode()


class TranscriptionServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], worker: ModelWorker, token: str | None, limits: Limits):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)
        self.worker, self.token, self.limits = worker, token, limits


class Handler(BaseHTTPRequestHandler):
    server: TranscriptionServer
    protocol_version = "HTTP/1.1"
    server_version = "vocabd"
    timeout = 60  # seconds a client may stall mid-request before its connection is dropped

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        log.info("serve_request", client=self.client_address[0], line=format % args)

    def do_GET(self) -> None:
        try:
            self._authorize()
            if self.path.split("?")[0] in ("/health", "/v1/health"):
                self._send_json(200, {"status": "ok", "model": self.server.worker.model_label})
            elif self.path.split("?")[0] == "/v1/models":
                self._send_json(200, {"object": "list", "data": [{"id": MODEL_ID, "object": "model",
                                                                   "owned_by": "vocabd"}]})
            else:
                raise ApiError(404, f"no such endpoint: GET {self.path}")
        except ApiError as e:
            self._send_error(e)

    def do_POST(self) -> None:
        try:
            self._authorize()
            if self.path.split("?")[0] not in ("/v1/audio/transcriptions", "/audio/transcriptions"):
                self.close_connection = True  # its body is not read
                raise ApiError(404, f"no such endpoint: POST {self.path}")
            self._transcribe()
        except ApiError as e:
            self._send_error(e)

    def _authorize(self) -> None:
        token = self.server.token
        if token is None:
            return
        given = self.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            self.close_connection = True
            raise ApiError(401, "missing or wrong API key (send 'Authorization: Bearer TOKEN')", "authentication_error")

    def handle_expect_100(self) -> bool:
        """Refuse an oversized upload before the client sends it (curl asks first for large bodies)."""
        try:
            self._authorize()
            self._declared_length()
        except ApiError as e:
            self._send_error(e)
            return False
        return super().handle_expect_100()

    def _declared_length(self) -> int:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            raise ApiError(411, "send the upload with a Content-Length (chunked bodies are not accepted)")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            raise ApiError(411, "a Content-Length header is required") from None
        if length < 0 or length > self.server.limits.max_bytes:
            self.close_connection = True  # the body is not read: the connection cannot be reused
            raise ApiError(413, f"request body of {length} bytes; this server takes at most "
                                f"{self.server.limits.max_bytes} bytes")
        return length

    def _read_body(self) -> bytes:
        try:
            return self.rfile.read(self._declared_length())
        except ApiError as e:
            if e.status == 413:
                self._discard_body()
            raise

    def _discard_body(self) -> None:
        """Read an oversized body (up to a bound) before answering 413: a client still sending it would
        otherwise see a broken pipe instead of the reason."""
        try:
            left = min(int(self.headers.get("Content-Length", "0")), DISCARD_LIMIT_FACTOR * self.server.limits.max_bytes)
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 16))
                if not chunk:
                    return
                left -= len(chunk)
        except (OSError, ValueError):
            return

    def _transcribe(self) -> None:
        body = self._read_body()
        try:
            form = parse_form(self.headers.get("Content-Type", ""), body)
        except FormError as e:
            raise ApiError(400, str(e)) from e
        if "file" not in form:
            raise ApiError(400, "the form has no 'file' field (the audio to transcribe)")
        fmt = form["response_format"].text() if "response_format" in form else "json"
        if fmt not in FORMATS:
            raise ApiError(400, f"response_format {fmt!r} is not supported; use one of {', '.join(FORMATS)}")
        language = form["language"].text().lower() if "language" in form else ""
        if language not in ENGLISH:
            raise ApiError(400, f"language {language!r}: this model transcribes English only")
        upload = form["file"]
        try:
            audio = decode_upload(upload.data, upload.filename or "file", self.server.limits.max_seconds)
        except UploadError as e:
            raise ApiError(e.status, str(e)) from e
        try:
            pending = self.server.worker.submit(audio)
        except Busy as e:
            raise ApiError(503, f"server busy: {e}; retry shortly", "server_error") from e
        try:
            segments, label = pending.result(timeout=self.server.limits.timeout_seconds)
        except TimeoutError:
            raise ApiError(504, "transcription took too long", "server_error") from None
        except Exception as e:  # noqa: BLE001 - reported to the client, logged by the worker
            raise ApiError(500, f"transcription failed: {e}", "server_error") from e
        content_type, payload = render(segments, fmt, len(audio) / 16000)
        self._send(200, content_type, payload, {"X-Vocabd-Model": label})

    def _send_json(self, status: int, data: dict) -> None:
        self._send(status, "application/json", json.dumps(data, ensure_ascii=False).encode())

    def _send_error(self, error: ApiError) -> None:
        self._send_json(error.status, {"error": {"message": str(error), "type": error.kind,
                                                 "code": HTTPStatus(error.status).phrase.lower().replace(" ", "_")}})

    def _send(self, status: int, content_type: str, payload: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)


def check_binding(host: str, token: str | None) -> None:
    if not is_loopback(host) and not token:
        raise VocabdError(f"--host {host} is reachable from other machines: set a token (--token or "
                          "$VOCABD_SERVE_TOKEN) so that only clients that know it are answered")


def make_server(worker: ModelWorker, host: str = "127.0.0.1", port: int = 8000, token: str | None = None,
                limits: Limits = Limits()) -> TranscriptionServer:
    check_binding(host, token)
    try:
        return TranscriptionServer((host, port), worker, token or None, limits)
    except OSError as e:
        raise VocabdError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e


def serve_forever(server: TranscriptionServer) -> None:
    """Serve until Ctrl-C or SIGTERM, then stop the worker."""
    import signal

    def stop(*_) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
    server.worker.start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.worker.stop()
