"""The allison user as a new user would run vocabd: a default workspace, files dropped into inbox/.

    flock /tmp/vocabd-heavy.lock .venv/bin/python benchmarks/new_user_allison.py WORKSPACE [--set S.KEY=VALUE ...]

`vocabd init WORKSPACE` (nothing configured), then the benchmark user's training recordings copied into
inbox/ as audio + transcript pairs and `jargon.txt` beside them, then `vocabd run --foreground`: the
default chain through both phases. The held-out sentences (`my_voice_eval`), the safety set and the replay
set never enter the workspace; afterwards the base model and the promoted adapter are scored on all three
with `vocabd evaluate`. `--set full.max_steps=300` sets one setting in the written vocabd.toml (which sets
nothing itself: every setting is a comment with its default), for a shorter run or a side-by-side variant
(e.g. `--set general.pool=\"none\"`). Reads ../shared/bench (or `--bench DIR`), copies nothing into the
repository.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench"
YARDSTICKS = {
    "primary (my_voice_eval)": "allison/my_voice_eval.jsonl",
    "safety (3 speakers)": "safety/safety_eval.jsonl",
    "replay (cathy, unseen)": "replay/replay.jsonl",
}
VOCABD = Path(sys.executable).parent / "vocabd"


def drop_recordings(manifest: Path, inbox: Path) -> int:
    """Copy each clip and its transcript into the inbox as `<id>.flac` + `<id>.txt`, as a user would."""
    count = 0
    for line in manifest.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        audio = manifest.parent / row["audio"]
        stem = row.get("id") or audio.stem
        (inbox / f"{stem}.txt").write_text(row["text"] + "\n", encoding="utf-8")
        shutil.copyfile(audio, inbox / f"{stem}{audio.suffix}")
        count += 1
    return count


def evaluate(root: Path, manifest: Path, adapter: Path | None, *extra: str) -> dict:
    args = [str(VOCABD), "evaluate", str(manifest), "--jargon", str(root / "data" / "jargon.txt"),
            "--allow-outside", "--json", "-w", str(root), *extra]
    if adapter is not None:
        args += ["--adapter", str(adapter)]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return json.loads(out[out.index("{"):])


def promoted_adapter(root: Path) -> Path | None:
    active = root / "data" / "active.json"
    if not active.is_file():
        return None
    record = json.loads(active.read_text(encoding="utf-8"))
    path = record.get("adapter_path")
    return Path(path) if path else None


def brief(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in ("worst", "utterances")}


def fmt(result: dict) -> str:
    keys = ("clips", "wer", "wer_normalized", "term_recall", "false_alarms")
    return "  ".join(f"{k}={result.get(k)}" for k in keys if k in result)


def set_value(toml: Path, assignment: str) -> None:
    """Set `key = value` in `[section]` of a vocabd.toml: on the key's line, commented out (as `vocabd init`
    writes every setting) or not; else as a new line at the end of the section, or in a new section."""
    dotted, value = assignment.split("=", 1)
    section, key = dotted.strip().split(".", 1)
    setting = f"{key} = {value.strip()}"
    lines, current, end, found = toml.read_text(encoding="utf-8").splitlines(), None, None, {}
    for i, line in enumerate(lines):
        text = line.strip()
        if text.startswith("["):
            current = text[1:].split("]")[0].strip()
            end = i + 1 if current == section else end
        elif current == section and text:
            end = i + 1  # after the section's last line
            commented = text.startswith("#")
            if "=" in text and text.lstrip("#").split("=")[0].strip() == key:
                found.setdefault(commented, i)  # an uncommented line wins over a commented one
    if found:
        lines[found.get(False, found.get(True))] = setting
    elif end is not None:
        lines.insert(end, setting)
    else:
        lines += ["", f"[{section}]", setting]
    toml.write_text("\n".join(lines) + "\n", encoding="utf-8")


def fresh_workspace(path: Path, settings: list[str]) -> Path:
    """`vocabd init` in an emptied `path`, then each `SECTION.KEY=VALUE` written into its vocabd.toml."""
    root = path.resolve()
    if root.exists():
        shutil.rmtree(root)
    subprocess.run([str(VOCABD), "init", str(root)], check=True)
    for assignment in settings:
        set_value(root / "vocabd.toml", assignment)
    return root


def run_chain(root: Path) -> Path | None:
    """`vocabd run --foreground` to the end; the promoted adapter (None when none was)."""
    start = time.time()
    chain = subprocess.run([str(VOCABD), "run", "--foreground", "-w", str(root)])
    print(f"chain wall time: {time.time() - start:.0f} s (exit {chain.returncode})", flush=True)
    adapter = promoted_adapter(root)
    print(f"promoted adapter: {adapter}", flush=True)
    return adapter


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--set", action="append", default=[], dest="settings", metavar="SECTION.KEY=VALUE")
    parser.add_argument("--bench", type=Path, default=BENCH)
    args = parser.parse_args()
    bench = args.bench.resolve()
    yardsticks = {label: bench / path for label, path in YARDSTICKS.items()}
    root = fresh_workspace(args.workspace, args.settings)
    dropped = drop_recordings(bench / "allison" / "my_voice_train.jsonl", root / "inbox")
    shutil.copyfile(bench / "allison" / "jargon.txt", root / "inbox" / "jargon.txt")
    print(f"workspace {root}: {dropped} recordings + jargon.txt dropped into inbox/", flush=True)

    adapter = run_chain(root)
    results = {}
    for label, manifest in yardsticks.items():
        base = evaluate(root, manifest, None)
        tuned = evaluate(root, manifest, adapter) if adapter else None
        results[label] = {"base": brief(base), "adapter": brief(tuned) if tuned else None}
        print(f"{label}\n  base    {fmt(base)}\n  adapter {fmt(tuned) if tuned else '(none promoted)'}", flush=True)
    (root / "new_user_results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
