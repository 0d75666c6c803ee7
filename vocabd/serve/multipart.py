"""Parse a `multipart/form-data` request body: the parts are found by their boundary in the bytes (no copy of
the body as text), at most MAX_PARTS of them; each part's few header lines go to the standard library's parser."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import HTTP

MAX_PARTS = 16  # a transcription form has a handful of fields
MAX_PART_HEADER = 8192  # bytes of header lines in one part


class FormError(ValueError):
    """The body is not the form it claims to be; the message says what is wrong."""


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    data: bytes

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace").strip()


def parse_form(content_type: str, body: bytes) -> dict[str, Part]:
    """Field name → part. The first part of each name wins."""
    delimiter = b"--" + _boundary(content_type)
    pos = body.find(delimiter)
    if pos < 0:
        raise FormError("the multipart body has no part")
    parts: dict[str, Part] = {}
    count = 0
    while not body.startswith(b"--", pos + len(delimiter)):
        count += 1
        if count > MAX_PARTS:
            raise FormError(f"the form has more than {MAX_PARTS} parts")
        start = body.find(b"\r\n", pos + len(delimiter)) + 2
        end = body.find(b"\r\n" + delimiter, start)
        if start < 2 or end < 0:
            raise FormError("the multipart body ends inside a part (no closing boundary)")
        headers, data = _split_part(body, start, end)
        name = headers.get_param("name", header="content-disposition")
        if name:
            parts.setdefault(str(name), Part(str(name), headers.get_filename(), data))
        pos = end + 2
    return parts


def _boundary(content_type: str) -> bytes:
    if not content_type.lower().startswith("multipart/form-data"):
        raise FormError(f"expected Content-Type multipart/form-data, got {content_type or 'none'!r}")
    message = Message()
    message["Content-Type"] = content_type
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not 0 < len(boundary) <= 70:
        raise FormError("multipart/form-data without a boundary")
    return boundary.encode("latin-1", errors="replace")


def _split_part(body: bytes, start: int, end: int) -> tuple[Message, bytes]:
    """(header lines, content) of the part between `start` and `end`."""
    if body.startswith(b"\r\n", start):
        return Message(), body[start + 2:end]
    head_end = body.find(b"\r\n\r\n", start, min(end, start + MAX_PART_HEADER))
    if head_end < 0:
        raise FormError(f"a part's header lines are missing their end or longer than {MAX_PART_HEADER} bytes")
    headers = BytesHeaderParser(policy=HTTP).parsebytes(body[start:head_end + 4])
    return headers, body[head_end + 4:end]
