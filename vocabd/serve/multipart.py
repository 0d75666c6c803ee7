"""Parse a `multipart/form-data` request body (the standard library's email parser does the MIME work)."""

from __future__ import annotations

from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP


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
    if not content_type.lower().startswith("multipart/form-data"):
        raise FormError(f"expected Content-Type multipart/form-data, got {content_type or 'none'!r}")
    if "boundary=" not in content_type:
        raise FormError("multipart/form-data without a boundary")
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
                                                  + body)
    if not message.is_multipart():
        raise FormError("the multipart body could not be parsed")
    parts: dict[str, Part] = {}
    for item in message.iter_parts():
        name = item.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = item.get_payload(decode=True) or b""
        parts.setdefault(str(name), Part(str(name), item.get_filename(), payload))
    return parts
