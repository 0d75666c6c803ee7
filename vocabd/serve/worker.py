"""One model worker: requests queue up and are transcribed one at a time; a newly promoted adapter is picked up
between requests (data/active.json is watched), without a restart.

Not batched on purpose: Moonshine's front end normalizes over the whole padded batch, so a clip padded next to
a longer one can come out differently; a request's text must not depend on what else arrived with it."""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from vocabd.asr.active import ActiveModel, active_model, active_stamp
from vocabd.errors import VocabdError
from vocabd.log import get_logger
from vocabd.workspace import Workspace

log = get_logger("vocabd.serve")

WATCH_SECONDS = 1.0  # how often an idle worker looks at data/active.json


class Busy(Exception):
    """The queue is full: the client should retry later."""


@dataclass
class Loaded:
    active: ActiveModel
    asr: object  # vocabd.asr.model.Asr

    @property
    def label(self) -> str:
        return self.active.experiment or ("base" if self.active.adapter is None else str(self.active.adapter))


class ModelWorker:
    """Owns the model; `submit` returns a Future of the text. Start with `start()`, end with `stop()`."""

    def __init__(self, ws: Workspace, queue_size: int = 32) -> None:
        self.ws = ws
        self.jobs: queue.Queue[tuple[np.ndarray, Future]] = queue.Queue(maxsize=queue_size)
        self.stamp = self._stamps()
        self.loaded = self._load(active_model(ws))
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vocabd-model", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=30)

    @property
    def model_label(self) -> str:
        return self.loaded.label

    def submit(self, audio: np.ndarray) -> Future:
        done: Future = Future()
        try:
            self.jobs.put_nowait((audio, done))
        except queue.Full:
            raise Busy(f"{self.jobs.maxsize} requests are already waiting") from None
        return done

    def _load(self, active: ActiveModel) -> Loaded:
        from vocabd.asr.model import load_asr

        started = time.monotonic()
        asr = self._biased(load_asr(active.base, active.adapter))
        log.info("serve_model_loaded", base=active.base, adapter=str(active.adapter or ""),
                 seconds=round(time.monotonic() - started, 1))
        return Loaded(active, asr)

    def _biased(self, asr):
        """Decoding as `vocabd transcribe` does it ([decode] and [bias] in vocabd.toml)."""
        from vocabd.asr.biasing import configured_decoding, jargon_terms

        jargon = self.ws.jargon
        return configured_decoding(asr, jargon_terms(jargon if jargon.is_file() else None), self.ws.config)

    def _stamps(self) -> tuple:
        try:
            jargon = self.ws.jargon.stat().st_mtime_ns
        except FileNotFoundError:
            jargon = None
        return active_stamp(self.ws), jargon

    def refresh(self) -> None:
        """Load the newly promoted adapter if data/active.json changed (keep the old model if it cannot load);
        rebuild the biasing when the jargon list changed."""
        stamp = self._stamps()
        if stamp == self.stamp:
            return
        if stamp[0] == self.stamp[0]:
            self.stamp = stamp
            try:
                self.loaded = Loaded(self.loaded.active, self._biased(self.loaded.asr))
            except Exception as e:  # noqa: BLE001 - keep serving with the previous biasing
                log.error("serve_bias_not_updated", error=str(e))
            return
        self.stamp = stamp
        try:
            active = active_model(self.ws)
            if active != self.loaded.active:
                self.loaded = self._load(active)
        except (VocabdError, OSError, ValueError) as e:
            log.error("serve_model_not_switched", error=str(e), keeping=self.loaded.label)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.refresh()
            try:
                audio, done = self.jobs.get(timeout=WATCH_SECONDS)
            except queue.Empty:
                continue
            loaded = self.loaded
            try:
                segments = transcribe_segments(loaded.asr, audio)
            except Exception as e:  # one bad request must not end the server
                log.exception("serve_transcription_failed", seconds=round(len(audio) / 16000, 2))
                done.set_exception(e)
                continue
            done.set_result((segments, loaded.label))


def transcribe_segments(asr, audio: np.ndarray) -> list[tuple[float, float, str]]:
    """(start, end, text) pieces: the whole clip up to 30 s, else pieces cut in its pauses (vocabd/longform/)."""
    from vocabd.asr.transcribe import transcribe
    from vocabd.audio import SAMPLE_RATE
    from vocabd.longform.silence import cut_points
    from vocabd.manifest import MAX_SECONDS

    total = len(audio) / SAMPLE_RATE
    bounds = [0.0] + ([t for t, _ in cut_points(audio)] if total > MAX_SECONDS else []) + [total]
    pieces = [audio[int(a * SAMPLE_RATE):int(b * SAMPLE_RATE)] for a, b in zip(bounds, bounds[1:])]
    texts = transcribe(asr, pieces, batch_size=1)
    return [(a, b, text) for a, b, text in zip(bounds, bounds[1:], texts) if text]
