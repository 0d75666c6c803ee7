"""Parse a `multipart/form-data` request body: the parts are found by their boundary in the bytes (no copy of
the body as text), at most MAX_PARTS of them; each part's few header lines go to the standard library's parser."""

from __future__ import annotations

import mmap
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import HTTP
from typing import BinaryIO, Iterator

MAX_PARTS = 16  # a transcription form has a handful of fields
MAX_PART_HEADER = 8192  # bytes of header lines in one part


class FormError(ValueError):
    """The body is not the form it claims to be; the message says what is wrong."""


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    data: memoryview  # a view into the body: an upload is never copied in memory

    def text(self) -> str:
        return bytes(self.data).decode("utf-8", errors="replace").strip()


@contextmanager
def open_form(content_type: str, body: BinaryIO) -> Iterator[dict[str, Part]]:
    """The form in the spooled body file, its parts views into the file's pages (mapped, not read: memory
    does not hold a copy of the upload); the views end with the block."""
    size = body.seek(0, 2)
    if size == 0:
        raise FormError("the request body is empty")
    with mmap.mmap(body.fileno(), size, access=mmap.ACCESS_READ) as mapped:
        parts: dict[str, Part] = {}
        try:
            yield parse_form(content_type, mapped, parts)
        finally:
            for part in parts.values():
                part.data.release()


def parse_form(content_type: str, body: bytes | mmap.mmap, parts: dict[str, Part] | None = None) -> dict[str, Part]:
    """Field name → part, into `parts` as they are found. The first part of each name wins; each part's data is
    a view into `body`."""
    parts = {} if parts is None else parts
    delimiter = b"--" + _boundary(content_type)
    pos = body.find(delimiter)
    if pos < 0:
        raise FormError("the multipart body has no part")
    count = 0
    while body[pos + len(delimiter):pos + len(delimiter) + 2] != b"--":
        count += 1
        if count > MAX_PARTS:
            raise FormError(f"the form has more than {MAX_PARTS} parts")
        start = body.find(b"\r\n", pos + len(delimiter)) + 2
        end = body.find(b"\r\n" + delimiter, start)
        if start < 2 or end < 0:
            raise FormError("the multipart body ends inside a part (no closing boundary)")
        headers, data_start = _split_part(body, start, end)
        name = headers.get_param("name", header="content-disposition")
        if name and str(name) not in parts:
            with memoryview(body) as whole:
                parts[str(name)] = Part(str(name), headers.get_filename(), whole[data_start:end])
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


def _split_part(body: bytes | mmap.mmap, start: int, end: int) -> tuple[Message, int]:
    """The header lines of the part between `start` and `end`, and where its content starts."""
    if body[start:start + 2] == b"\r\n":
        return Message(), start + 2
    head_end = body.find(b"\r\n\r\n", start, min(end, start + MAX_PART_HEADER))
    if head_end < 0:
        raise FormError(f"a part's header lines are missing their end or longer than {MAX_PART_HEADER} bytes")
    return BytesHeaderParser(policy=HTTP).parsebytes(body[start:head_end + 4]), head_end + 4
