"""The HTTP side: `POST /v1/audio/transcriptions` as the OpenAI audio API has it, `GET /v1/models`, `GET /health`."""

from __future__ import annotations

import hmac
import ipaddress
import json
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import BinaryIO, Callable

import numpy as np

from vocabd.errors import VocabdError
from vocabd.log import get_logger
from vocabd.serve.multipart import FormError, Part, open_form
from vocabd.serve.upload import UploadError, decode_upload
from vocabd.serve.worker import Busy, ModelWorker

log = get_logger("vocabd.serve")

MODEL_ID = "vocabd"
FORMATS = ("json", "text", "verbose_json", "srt", "vtt")
ENGLISH = {"", "en", "english"}
DISCARD_LIMIT_FACTOR = 4  # an oversized body up to 4x the limit is read and dropped before the 413


@dataclass(frozen=True)
class Limits:
    """What one client may cost: bodies are spooled to a temporary file as they arrive and only
    `upload_slots` of them are parsed and decoded at once, so memory does not grow with the number of uploads;
    a client slower than the header and body deadlines is dropped, freeing its connection."""

    max_bytes: int = 25 * 1024 * 1024  # the OpenAI API's upload limit
    max_seconds: float = 120.0  # longer than 30 s: cut in pauses and transcribed piece by piece
    timeout_seconds: float = 300.0  # waiting in the queue plus transcription
    header_seconds: float = 10.0  # from connecting (or the previous answer) to the end of the header lines
    body_grace_seconds: float = 10.0  # then the body must keep arriving at body_min_rate
    body_min_rate: int = 64 * 1024  # bytes per second
    max_connections: int = 64  # open at once; more wait to be accepted, up to header_seconds, then get a 503
    upload_slots: int = 2  # uploads parsed and decoded at once


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


def host_name(header: str) -> str:
    """The name in a Host header, without its port, lower case."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.index("]")] if "]" in header else ""
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class TranscriptionServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # connections waiting to be accepted while max_connections are open

    def __init__(self, address: tuple[str, int], worker: ModelWorker, token: str | None, limits: Limits):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)
        self.worker, self.token, self.limits = worker, token, limits
        self.connections = threading.BoundedSemaphore(limits.max_connections)
        self.uploads = threading.BoundedSemaphore(limits.upload_slots)
        # A loopback server answers only requests addressed to it by name: a web page whose own name resolves
        # to 127.0.0.1 (DNS rebinding) sends its own name. Opened to others with --host, a token guards it.
        self.host_names = {"localhost", "127.0.0.1", "::1", address[0].lower()} if is_loopback(address[0]) else None

    def process_request(self, request, client_address) -> None:
        if self.connections.acquire(timeout=self.limits.header_seconds):
            super().process_request(request, client_address)
            return
        log.warning("serve_connection_refused", client=client_address[0], open=self.limits.max_connections)
        body = b'{"error": {"message": "server busy: too many open connections; retry shortly", ' \
               b'"type": "server_error", "code": "service_unavailable"}}'
        try:
            request.settimeout(1.0)
            request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        except OSError:
            pass
        self.shutdown_request(request)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connections.release()


class Handler(BaseHTTPRequestHandler):
    server: TranscriptionServer
    protocol_version = "HTTP/1.1"
    server_version = "vocabd"
    timeout = 60  # seconds a client may stall mid-request before its connection is dropped

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        log.info("serve_request", client=self.client_address[0], line=format % args)

    def handle_one_request(self) -> None:
        """One request, its header lines due within header_seconds (a client trickling them is dropped)."""
        self._header_due = threading.Timer(self.server.limits.header_seconds, self._drop_slow_header)
        self._header_due.start()
        try:
            super().handle_one_request()
        finally:
            self._header_due.cancel()

    def _drop_slow_header(self) -> None:
        log.warning("serve_client_dropped", client=self.client_address[0],
                    reason=f"header not complete within {self.server.limits.header_seconds:g} s")
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _admit(self) -> None:
        """The header lines are in: check that the request is addressed to this server and authorized."""
        self._header_due.cancel()
        names = self.server.host_names
        host = self.headers.get("Host")
        if names is not None and (host is None or host_name(host) not in names):
            self.close_connection = True
            raise ApiError(403, f"Host {host!r} is not this server's name (it answers localhost, 127.0.0.1 and "
                                "[::1]; serve with --host to answer other names)")
        self._authorize()

    def do_GET(self) -> None:
        try:
            self._admit()
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
            self._admit()
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
            self._admit()
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

    def _spool_body(self) -> BinaryIO:
        """The body, in a temporary file (its bytes never wait in memory for an upload slot)."""
        try:
            length = self._declared_length()
        except ApiError as e:
            if e.status == 413:
                self._discard_body()
            raise
        spool = tempfile.TemporaryFile(prefix="vocabd-serve-")
        try:
            self._receive(length, spool.write)
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return spool

    def _discard_body(self) -> None:
        """Read an oversized body (up to a bound) before answering 413: a client still sending it would
        otherwise see a broken pipe instead of the reason."""
        try:
            declared = int(self.headers.get("Content-Length", "0"))
            self._receive(min(declared, DISCARD_LIMIT_FACTOR * self.server.limits.max_bytes), lambda _: None)
        except (ApiError, ValueError):
            return

    def _receive(self, length: int, sink: Callable[[bytes], object]) -> None:
        """Read `length` body bytes into `sink`; a client sending slower than body_min_rate (after the grace
        period) is dropped with a 408."""
        limits, started, received = self.server.limits, time.monotonic(), 0
        try:
            while received < length:
                due = started + limits.body_grace_seconds + received / limits.body_min_rate - time.monotonic()
                if due <= 0:
                    raise TimeoutError
                self.connection.settimeout(min(due, self.timeout))
                chunk = self.rfile.read1(min(length - received, 1 << 16))
                if not chunk:
                    raise ApiError(400, f"the connection closed after {received} of {length} body bytes")
                sink(chunk)
                received += len(chunk)
        except (TimeoutError, OSError) as e:
            self.close_connection = True
            log.warning("serve_client_dropped", client=self.client_address[0], reason="slow body", received=received)
            raise ApiError(408, f"the body arrived slower than {limits.body_min_rate} bytes/s "
                                f"({received} of {length} bytes)") from e
        finally:
            self.connection.settimeout(self.timeout)

    def _transcribe(self) -> None:
        with self._spool_body() as spool:
            if not self.server.uploads.acquire(timeout=self.server.limits.timeout_seconds):
                raise ApiError(503, "server busy: too many uploads being read; retry shortly", "server_error")
            try:
                audio, fmt = self._read_form(spool)
            finally:
                self.server.uploads.release()
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

    def _read_form(self, body: BinaryIO) -> tuple[np.ndarray, str]:
        """(the audio, the response format) of the form, or an ApiError saying what is wrong with it."""
        try:
            with open_form(self.headers.get("Content-Type", ""), body) as form:
                return self._read_fields(form)
        except FormError as e:
            raise ApiError(400, str(e)) from e

    def _read_fields(self, form: dict[str, Part]) -> tuple[np.ndarray, str]:
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
            return decode_upload(upload.data, upload.filename or "file", self.server.limits.max_seconds), fmt
        except UploadError as e:
            raise ApiError(e.status, str(e)) from e

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
