"""The queue's rows as JSON: a row in `queue.db` is plain data, never code.

Huey pickles its task messages by default, so a crafted row would run code when the daemon reads it.
This serializer writes a message as a JSON object and reads back only that shape; anything else is
refused (huey logs it and drops the row; the chain record re-enqueues the stage it named).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from huey.registry import Message
from huey.serializer import Serializer

SCALARS = ("id", "name", "retries", "retry_delay", "priority", "expires", "timeout", "retry_backoff")
TIMES = ("eta", "expires_resolved")
PLAIN = (str, int, float, bool, type(None))


class BadQueueRow(ValueError):
    """A row of queue.db that is not a task message vocabd wrote."""


class JsonSerializer(Serializer):
    def _serialize(self, data: Any) -> bytes:
        if not isinstance(data, Message):
            raise TypeError(f"vocabd's queue stores task messages only, not {type(data).__name__}")
        if data.on_complete or data.on_error or data.chord_config:
            raise TypeError("vocabd's queue does not store huey pipelines or chords")
        row: dict[str, Any] = {key: getattr(data, key) for key in SCALARS}
        row |= {key: getattr(data, key).isoformat() if getattr(data, key) else None for key in TIMES}
        row |= {"args": list(data.args or ()), "kwargs": dict(data.kwargs or {})}
        return json.dumps(row).encode("utf-8")

    def _deserialize(self, data: bytes) -> Message:
        try:
            row = json.loads(bytes(data).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise BadQueueRow(f"not a JSON task message ({e}); dropped, never executed") from None
        if not isinstance(row, dict) or not isinstance(row.get("name"), str):
            raise BadQueueRow("a JSON row that is not a task message; dropped")
        args, kwargs = row.get("args", []), row.get("kwargs", {})
        if not isinstance(args, list) or not isinstance(kwargs, dict) or not all(
                isinstance(v, PLAIN) for v in [*args, *kwargs.values(), *(row.get(k) for k in SCALARS)]):
            raise BadQueueRow(f"task message {row.get('id')} holds more than plain values; dropped")
        times = {key: _time(row.get(key)) for key in TIMES}
        return Message(**{key: row.get(key) for key in SCALARS}, **times, args=tuple(args), kwargs=kwargs)


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise BadQueueRow(f"task message time {value!r} is not an ISO time; dropped") from None
