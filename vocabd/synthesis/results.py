"""The synthesize and mix stages' typed results (light: the chain record holds them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Failure:
    text: str
    error: str


@dataclass
class SynthesisResult:
    manifest: Path
    backend: str
    cloned: bool
    voices: list[str]
    requested: int
    made: int  # newly synthesized
    cached: int  # already on disk
    failures: list[Failure] = field(default_factory=list)
    audio_seconds: float = 0.0
    new_audio_seconds: float = 0.0  # audio made by this run (not from the cache)
    wall_seconds: float = 0.0
    render_seconds: float = 0.0  # time spent synthesizing the new clips (summed over workers)

    @property
    def clips(self) -> int:
        return self.made + self.cached

    @property
    def real_time_factor(self) -> float | None:
        """Wall time per second of new audio (below 1 is faster than real time)."""
        return round(self.wall_seconds / self.new_audio_seconds, 4) if self.new_audio_seconds else None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["manifest"] = str(self.manifest)
        data.update(clips=self.clips, real_time_factor=self.real_time_factor)
        return data


@dataclass
class SourceStats:
    unique: int = 0  # distinct valid clips available
    rows: int = 0  # rows in the mixed manifest (with repeats)
    hours: float = 0.0  # audio hours of those rows
    rejected: int = 0  # invalid rows left out

    def to_dict(self) -> dict:
        return {"unique": self.unique, "rows": self.rows, "hours": round(self.hours, 4), "rejected": self.rejected}


@dataclass
class MixResult:
    manifest: Path
    sources: dict[str, SourceStats]
    synthetic_ratio: float  # requested share of synthetic among synthetic + real
    achieved_ratio: float | None
    problems: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.sources.values())

    @property
    def hours(self) -> float:
        return sum(s.hours for s in self.sources.values())

    def to_dict(self) -> dict:
        return {"manifest": str(self.manifest), "rows": self.rows, "hours": round(self.hours, 4),
                "synthetic_ratio": self.synthetic_ratio, "achieved_ratio": self.achieved_ratio,
                "sources": {k: v.to_dict() for k, v in self.sources.items()}, "problems": self.problems}
