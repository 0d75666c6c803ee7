"""A new user of another field: a jargon list alone, the default chain, then base vs adapter in both decodings.

    flock /tmp/vocabd-heavy.lock .venv/bin/python benchmarks/field_chain.py WORKSPACE \
        --jargon benchmarks/legal_jargon.txt --judge JUDGE_DIR/judge.jsonl [--set S.KEY=VALUE ...] \
        [--general LABEL=MANIFEST ...] [--every 1]

Runs the chain as `new_user_jargon_only.py` does, then scores the base model and the chain's adapter (the
promoted one, else the full run's best, so a kept-out adapter is measured too) on the judge and on real
general speech (`../shared/bench` safety and every `--every`-th replay clip, or `--general`), each in the
product's decoding (`vocabd evaluate`: the workspace's beams and the list's bias) and in plain greedy decoding
without bias (`[decode] beams = 1`, `--no-bias`). Each adapter line ends with its paired change against the
base model in normalized WER and the change's 95% interval: on cathy's 4,283 words that interval is
about ±0.6 point wide, and a subset (`--every 6`) widens it further.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from new_user_allison import BENCH, brief, evaluate, fresh_workspace, run_chain, set_value

from vocabd.codec import decode
from vocabd.evaluation.evaluate import EvalResult
from vocabd.evaluation.uncertainty import describe_change, paired_change

DECODINGS = {"product": [], "greedy": ["--no-bias"]}


def subset(manifest: Path, every: int, dest: Path) -> Path:
    """Every `every`-th row of a manifest, its audio paths made absolute."""
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    with dest.open("w", encoding="utf-8") as f:
        for row in rows[::every]:
            row["audio"] = str((manifest.parent / row["audio"]).resolve())
            f.write(json.dumps(row) + "\n")
    return dest


def chain_adapter(root: Path, promoted: Path | None) -> Path | None:
    if promoted is not None:
        return promoted
    bests = sorted(root.glob("runs/*full*/best"), key=lambda p: p.stat().st_mtime)
    return bests[-1] if bests else None


def line(result: dict) -> str:
    return (f"clips {result['clips']}  WER norm {result['wer_normalized']:.4f} raw {result['wer']:.4f}  "
            f"recall {result.get('term_recall')}  false alarms {result.get('false_alarms')}")


def paired_points(base: dict, adapter: dict) -> str:
    """Adapter minus base on the same clips (normalized WER), with its 95% paired bootstrap interval."""
    change = paired_change(decode(EvalResult, base, "the base's result"), decode(EvalResult, adapter, "the adapter's"))
    return f"change {describe_change(change)}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--jargon", type=Path, required=True)
    parser.add_argument("--judge", type=Path, required=True)
    parser.add_argument("--set", action="append", default=[], dest="settings", metavar="SECTION.KEY=VALUE")
    parser.add_argument("--general", action="append", default=[], metavar="LABEL=MANIFEST")
    parser.add_argument("--every", type=int, default=1, help="keep every N-th replay clip (cathy)")
    args = parser.parse_args()
    root = fresh_workspace(args.workspace, args.settings)
    shutil.copyfile(args.jargon, root / "inbox" / "jargon.txt")
    promoted = run_chain(root)
    adapter = chain_adapter(root, promoted)
    print(f"scored adapter: {adapter} ({'promoted' if promoted else 'kept out'})", flush=True)
    sets = {"judge (flite)": args.judge.resolve(), "safety (3 speakers)": BENCH / "safety" / "safety_eval.jsonl",
            "replay (cathy)": subset(BENCH / "replay" / "replay.jsonl", args.every, root / "replay_subset.jsonl")}
    sets |= {label: Path(path).resolve() for label, path in (g.split("=", 1) for g in args.general)}
    toml = root / "vocabd.toml"
    product_toml = toml.read_text(encoding="utf-8")
    results = {}
    for decoding, extra in DECODINGS.items():
        toml.write_text(product_toml, encoding="utf-8")
        if decoding == "greedy":
            set_value(toml, "decode.beams=1")
        for label, manifest in sets.items():
            base = evaluate(root, manifest, None, *extra)
            results[f"{label} | base | {decoding}"] = brief(base)
            print(f"{label:24} {decoding:8} base     {line(base)}", flush=True)
            if adapter is not None:
                tuned = evaluate(root, manifest, adapter, *extra)
                change = paired_points(base, tuned)
                results[f"{label} | adapter | {decoding}"] = brief(tuned) | {"change": change}
                print(f"{label:24} {decoding:8} adapter  {line(tuned)}  {change}", flush=True)
    toml.write_text(product_toml, encoding="utf-8")
    (root / "field_chain_results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
