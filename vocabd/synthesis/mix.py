"""The mix job: synthetic jargon clips + the user's real recordings -> `data/mixed_train(_mini).jsonl`.

Only validated rows go in. The synthetic share follows `mix.synthetic_ratio`; the scarcer side is
upsampled (each clip repeated at most MAX_REPEAT times) rather than the other side thrown away.
General-speech replay is optional here: the trainer already mixes `train.replay` into every batch
(and keeps a replay dev split), so the pipeline leaves `replay` off and `vocabd mix --replay` is for
a standalone mixed manifest.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

from vocabd.errors import VocabdError
from vocabd.synthesis.synthesize import synthetic_manifest
from vocabd.log import get_logger
from vocabd.manifest import Clip, Problem, read_manifest, write_manifest
from vocabd.synthesis.results import MixResult, SourceStats
from vocabd.workspace import MIXED_TRAIN, MY_VOICE_TRAIN, Workspace, check_phase

MAX_REPEAT = 8  # a clip appears at most this many times; beyond that the ratio gives way

log = get_logger(__name__)


class MixError(VocabdError):
    pass


def mix(ws: Workspace, phase: str, replay: Path | None = None, replay_ratio: float = 0.0) -> MixResult:
    """Combine the phase's synthetic clips with `data/my_voice_train.jsonl` (and optional replay)."""
    check_phase(phase)
    if not 0.0 <= replay_ratio < 1.0:
        raise MixError(f"replay ratio must be in [0, 1), got {replay_ratio}")
    ratio = ws.config.mix.synthetic_ratio
    if not 0.0 <= ratio <= 1.0:
        raise MixError(f"{ws.config_file}: [mix.synthetic_ratio] must be in [0, 1], got {ratio}")
    problems: dict[str, list[Problem]] = {}
    synthetic = _valid_clips(ws, synthetic_manifest(ws, phase), "synthetic", problems)
    real = _valid_clips(ws, ws.manifest(MY_VOICE_TRAIN), "real", problems)
    if not synthetic and not real:
        raise MixError(f"nothing to mix: no valid clips in {synthetic_manifest(ws, phase)} or "
                       f"{ws.manifest(MY_VOICE_TRAIN)}; run `vocabd synthesize --phase {phase}` first")
    rng = random.Random(ws.config.mix.seed)
    n_synthetic, n_real = target_counts(len(synthetic), len(real), ratio)
    rows = {"synthetic": upsample(synthetic, n_synthetic, rng), "real": upsample(real, n_real, rng)}
    if replay is not None and replay_ratio > 0:
        pool = _valid_clips(ws, Path(replay), "replay", problems, allow_outside=True)
        wanted = round((len(rows["synthetic"]) + len(rows["real"])) * replay_ratio / (1 - replay_ratio))
        rows["replay"] = upsample(pool, min(wanted, len(pool) * MAX_REPEAT), rng)
    mixed = [clip for group in rows.values() for clip in group]
    rng.shuffle(mixed)
    manifest = ws.phase_manifest(MIXED_TRAIN, phase)
    write_manifest(manifest, mixed)
    result = MixResult(manifest=manifest, sources={}, synthetic_ratio=ratio,
                       achieved_ratio=_share(len(rows["synthetic"]), len(rows["real"])),
                       problems=[str(p) for group in problems.values() for p in group])
    for source, group in rows.items():
        result.sources[source] = SourceStats(unique=len({c.audio for c in group}), rows=len(group),
                                             hours=sum(c.duration for c in group) / 3600,
                                             rejected=len(problems.get(source, [])))
    _store_stats(result)
    log.info("mix_done", manifest=str(manifest), rows=result.rows, hours=round(result.hours, 3),
             achieved_ratio=result.achieved_ratio, **{f"{k}_rows": v.rows for k, v in result.sources.items()},
             rejected=len(result.problems))
    return result


def target_counts(n_synthetic: int, n_real: int, ratio: float) -> tuple[int, int]:
    """Rows of each kind so synthetic / (synthetic + real) is near `ratio`, dropping nothing that exists."""
    if n_synthetic == 0 or n_real == 0 or ratio in (0.0, 1.0):
        keep_synthetic = n_synthetic if ratio > 0 or n_real == 0 else 0
        keep_real = n_real if ratio < 1 or n_synthetic == 0 else 0
        return keep_synthetic, keep_real
    need_real = math.ceil(n_synthetic * (1 - ratio) / ratio)
    if need_real >= n_real:
        return n_synthetic, min(need_real, n_real * MAX_REPEAT)
    need_synthetic = math.ceil(n_real * ratio / (1 - ratio))
    return min(need_synthetic, n_synthetic * MAX_REPEAT), n_real


def upsample(clips: list[Clip], n: int, rng: random.Random) -> list[Clip]:
    """`n` rows: every clip once (in a shuffled order) before any clip repeats; repeats get an id suffix."""
    if not clips or n <= 0:
        return []
    out: list[Clip] = []
    round_no = 0
    while len(out) < n:
        order = list(clips)
        rng.shuffle(order)
        for clip in order[: n - len(out)]:
            out.append(clip if round_no == 0 else _repeat(clip, round_no))
        round_no += 1
    return out


def _repeat(clip: Clip, round_no: int) -> Clip:
    return Clip(audio=clip.audio, text=clip.text, duration=clip.duration, speaker=clip.speaker, source=clip.source,
                id=f"{clip.id}#{round_no + 1}", extra=dict(clip.extra))


def _share(n_synthetic: int, n_real: int) -> float | None:
    total = n_synthetic + n_real
    return round(n_synthetic / total, 4) if total else None


def _valid_clips(ws: Workspace, path: Path, source: str, problems: dict[str, list[Problem]],
                 allow_outside: bool | None = None) -> list[Clip]:
    """The rows that pass validation; the others are logged and counted, not silently dropped."""
    if not path.is_file():
        log.info("mix_source_missing", source=source, manifest=str(path))
        return []
    outside = ws.config.data.allow_outside if allow_outside is None else allow_outside
    clips, bad = read_manifest(path, root=ws.root, allow_outside=outside, check_audio=True)
    for problem in bad:
        log.warning("mix_row_rejected", source=source, problem=str(problem))
    problems[source] = bad
    for clip in clips:
        clip.source = source
    return clips


def _store_stats(result: MixResult) -> None:
    path = result.manifest.with_suffix(".stats.json")
    path.write_text(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def summary_text(result: MixResult) -> str:
    lines = [f"{result.manifest}: {result.rows} rows, {result.hours:.3f} h; synthetic share "
             f"{result.achieved_ratio} (asked {result.synthetic_ratio})"]
    for source, stats in result.sources.items():
        lines.append(f"  {source:<9} {stats.rows:>6} rows from {stats.unique:>5} clips  {stats.hours:.3f} h"
                     + (f"  ({stats.rejected} invalid rows left out)" if stats.rejected else ""))
    lines += [f"  left out: {p}" for p in result.problems[:10]]
    return "\n".join(lines)
