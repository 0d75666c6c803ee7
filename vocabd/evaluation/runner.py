"""The `evaluate` stage: base model vs the run's best adapter on the primary and safety sets.

Each evaluation is a worker process (`vocabd.evaluation.worker`: a request JSON in, the EvalResult JSON
out), so the calling process (the daemon) never imports torch. The base model's results are cached: they do not change between phases.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from vocabd.asr.identity import ModelIdentity, read_identity
from vocabd.codec import DecodeError, decode, encode
from vocabd.errors import VocabdError
from vocabd.evaluation.evaluate import EvalResult
from vocabd.files import CorruptFile, read_json, write_json
from vocabd.log import get_logger
from vocabd.manifest import has_rows
from vocabd.workspace import MY_VOICE_EVAL, SAFETY_EVAL, SYNTHETIC_EVAL, Workspace

log = get_logger(__name__)

EVAL_TIMEOUT_S = 3 * 3600
PACKAGE = Path(__file__).resolve().parents[1]
# The code that turns a clip into a scored transcript: a new vocabd that changes it makes cached results stale.
SCORING_CODE = ("asr/*.py", "scoring/*.py", "evaluation/*.py", "jargon.py", "audio.py")


class EvaluationCrashed(VocabdError):
    """The evaluation process was killed (a signal): worth retrying."""


@dataclass
class SetScore:
    """One set's WERs, base and adapter: what the chain record keeps and the active adapter names."""
    manifest: str
    kind: str
    clips: int
    base_wer: float
    adapter_wer: float
    base_wer_normalized: float
    adapter_wer_normalized: float


@dataclass
class SetPair:
    """Base model and adapter on one evaluation set, on the same base model."""
    manifest: str
    kind: str  # real or synthetic (the primary set), general speech (the safety set)
    base: EvalResult
    adapter: EvalResult
    describe: str | None = None  # what a safety yardstick is made of

    def score(self) -> SetScore:
        return SetScore(self.manifest, self.kind, self.base.clips, self.base.wer, self.adapter.wer,
                        self.base.wer_normalized, self.adapter.wer_normalized)


@dataclass
class RunEvaluation:
    primary: SetPair
    safety: SetPair | None = None  # None: no general-speech yardstick of any kind
    safety_real: SetPair | None = None  # real voices beside a synthetic safety yardstick

    def pairs(self) -> dict[str, SetPair]:
        named = (("primary", self.primary), ("safety", self.safety), ("safety_real", self.safety_real))
        return {name: pair for name, pair in named if pair}


def primary_set(ws: Workspace) -> tuple[Path, str]:
    """The user's held-out recordings, or the held-out synthetic clips when there are none."""
    real = ws.manifest(MY_VOICE_EVAL)
    if has_rows(real):
        return real, "real"
    return ws.manifest(SYNTHETIC_EVAL), "synthetic"


def safety_set(ws: Workspace) -> tuple[Path, str] | None:
    """The user's own data/safety_eval.jsonl, else the default pool's yardstick; with what it is made of."""
    from vocabd.general.pool import pool_manifest, read_pool, summary

    path = ws.manifest(SAFETY_EVAL)
    if has_rows(path):
        return path, "your own general-speech set (data/safety_eval.jsonl)"
    yardstick = pool_manifest(ws, "yardstick")
    if yardstick is None:
        return None
    return yardstick, ("the default general-speech pool's held-out part, " + summary(read_pool(ws), "yardstick")
                       + "; never trained on, in voices/speakers and with texts the replay does not use")


def real_safety_set(ws: Workspace) -> tuple[Path, str] | None:
    """The real part beside a synthetic default yardstick (None with the user's own set or a real pool)."""
    from vocabd.general.pool import describe_real, read_pool, real_manifest

    if has_rows(ws.manifest(SAFETY_EVAL)) or (path := real_manifest(ws)) is None:
        return None
    return path, describe_real(read_pool(ws)["real_yardstick"]) + "; never trained on"


def jargon_file(ws: Workspace) -> Path | None:
    path = ws.jargon
    return path if path.is_file() else None


def evaluate_model(ws: Workspace, manifest: Path, adapter: Path | None = None,
                   base: ModelIdentity | None = None) -> EvalResult:
    """One EvalResult on `base`: by default the base `adapter` was trained on (its base_model.json), else
    `[model] base`. The base model's own result (adapter None) comes from the cache when unchanged."""
    base = base or (read_identity(adapter) if adapter is not None else None)
    cache = _cache_file(ws, manifest, base) if adapter is None else None
    if cache is not None and (cached := _cached(cache)) is not None:
        log.info("base_eval_cached", manifest=str(manifest))
        return cached
    result = _run_evaluate(ws, manifest, adapter, base.name if base else ws.config.model.base)
    if cache is not None:
        write_json(cache, result.to_dict())
    return result


def _cached(cache: Path) -> EvalResult | None:
    """A cached base evaluation; a torn or wrong-shaped one is said and made again."""
    try:
        data = read_json(cache)
        return decode(EvalResult, data, cache.name) if data is not None else None
    except (CorruptFile, DecodeError) as e:
        log.warning("eval_cache_unreadable", error=str(e))
        return None


def scoring_code_digest() -> bytes:
    digest = hashlib.sha256()
    for pattern in SCORING_CODE:
        for path in sorted(PACKAGE.glob(pattern)):
            digest.update(path.read_bytes())
    return digest.digest()


def _run_evaluate(ws: Workspace, manifest: Path, adapter: Path | None, model: str | None = None) -> EvalResult:
    """One evaluation in a worker process (the daemon never loads torch): a request in, an EvalResult out."""
    from vocabd.evaluation.worker import EvalRequest
    from vocabd.child.worker import WorkerFailed, WorkerKilled, run_worker

    # audio must stay inside the workspace unless [data] allow_outside
    jargon = jargon_file(ws)
    request = EvalRequest(manifest=str(manifest), model=model or ws.config.model.base, adapter=str(adapter) if adapter else None,
                          jargon=str(jargon) if jargon else None, workspace=str(ws.root),
                          allow_outside=ws.config.data.allow_outside)
    log.info("evaluating", manifest=str(manifest), adapter=str(adapter or "base"))
    try:
        reply = run_worker("vocabd.evaluation.worker", encode(request), cwd=ws.root, timeout=EVAL_TIMEOUT_S,
                           env={"VOCABD_HOME": str(ws.root)}, log_file=ws.eval_cache / "worker.log")
    except WorkerKilled as e:
        raise EvaluationCrashed(f"evaluation of {manifest}: {e}") from e
    except WorkerFailed as e:
        raise VocabdError(f"evaluation of {manifest} (adapter {adapter or 'none'}) failed: {e}") from e
    return decode(EvalResult, reply, "the evaluation worker's reply")


def _cache_file(ws: Workspace, manifest: Path, base: ModelIdentity | None) -> Path:
    """Keyed by the base model (the hash of its weights when known), the manifest's content, the jargon list's
    content, the decoding settings and the scoring code."""
    digest = hashlib.sha256((base.sha256 if base else ws.config.model.base).encode())
    digest.update(scoring_code_digest())
    digest.update(repr((ws.config.bias, ws.config.decode)).encode())
    digest.update(manifest.read_bytes())
    if (jargon := jargon_file(ws)) is not None:
        digest.update(jargon.read_bytes())
    return ws.eval_cache / f"base-{manifest.stem}-{digest.hexdigest()[:16]}.json"


def evaluate_run(ws: Workspace, experiment: str) -> RunEvaluation:
    """Base vs best adapter on the primary set and, when present, the safety set."""
    adapter = ws.run_dir(experiment) / "best"
    if not adapter.is_dir():
        raise VocabdError(f"{adapter}: the run wrote no best adapter")
    primary, kind = primary_set(ws)
    if not has_rows(primary):
        raise VocabdError(f"{primary}: no primary evaluation clips (no recordings and no held-out synthetic set)")
    safety = safety_set(ws)
    real = real_safety_set(ws)
    return RunEvaluation(primary=_pair(ws, primary, adapter, kind),
                         safety=_pair(ws, safety[0], adapter, "general speech", safety[1]) if safety else None,
                         safety_real=_pair(ws, real[0], adapter, "real general speech", real[1]) if real else None)


def _pair(ws: Workspace, manifest: Path, adapter: Path, kind: str, describe: str | None = None) -> SetPair:
    """Base and adapter on the same base model: the one the adapter was trained on."""
    base = read_identity(adapter)
    return SetPair(str(manifest), kind, evaluate_model(ws, manifest, base=base),
                   evaluate_model(ws, manifest, adapter, base), describe)
