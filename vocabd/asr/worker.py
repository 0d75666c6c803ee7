"""Transcribe one audio file with a base model: the voice sample's transcript when it came without one
(`python -P -m vocabd.asr.worker REQUEST.json RESULT.json`, request `{"audio", "model"}`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vocabd.errors import VocabdError


def handle(data: dict[str, Any]) -> dict[str, Any]:
    from vocabd.asr.model import load_asr
    from vocabd.asr.transcribe import transcribe
    from vocabd.audio import load_audio

    if not isinstance(data.get("audio"), str):
        raise VocabdError("a transcription request names an audio file")
    audio = load_audio(Path(data["audio"]))
    return {"text": transcribe(load_asr(data.get("model")), [audio])[0]}


if __name__ == "__main__":
    from vocabd.child.worker import serve

    serve(handle)
