"""A new user who drops a jargon list and nothing else: the default chain, scored by a judge it never saw.

    flock /tmp/vocabd-heavy.lock .venv/bin/python benchmarks/new_user_jargon_only.py WORKSPACE \
        --judge JUDGE_DIR/judge.jsonl [--jargon benchmarks/devops_jargon.txt] [--set S.KEY=VALUE ...] \
        [--adapter-only]

`vocabd init WORKSPACE` (nothing configured), the list copied into inbox/, `vocabd run --foreground`: the
default chain through both phases on synthetic speech alone. Then the base model and the promoted adapter,
each with and without run-time biasing, on the judge (`benchmarks/jargon_judge.py`: hand-written sentences in
flite voices, which vocabd never uses) for recall, exact written forms and WER, and on general speech
(`../shared/bench` safety and replay sets, or `--bench DIR`) for false alarms per 1,000 words.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from new_user_allison import BENCH, brief, evaluate, fresh_workspace, run_chain

HERE = Path(__file__).parent
GENERAL = {"safety (3 speakers)": "safety/safety_eval.jsonl", "replay (cathy)": "replay/replay.jsonl"}
EXACT = ("ops@acme.io", "p99", "v2.1", "250ms")  # symbols and addresses: exact in the clips that hold them


def exact_share(result: dict, form: str) -> str:
    holding = [u for u in result["utterances"] if form in u["ref"]]
    exact = sum(form in u["hyp"] for u in holding)
    return f"{exact}/{len(holding)}"


def false_alarms_per_1000(result: dict) -> float:
    words = sum(len(u["ref"].split()) for u in result["utterances"])
    return 1000 * result["false_alarms"] / words if words else 0.0


def summary(result: dict, general: bool) -> str:
    if general:
        return f"WER norm {result['wer_normalized']:.4f}  false alarms {result['false_alarms']} " \
               f"({false_alarms_per_1000(result):.2f} per 1,000 words)"
    exact = "  ".join(f"{form} {exact_share(result, form)}" for form in EXACT)
    return f"recall {result['term_recall']:.3f}  WER norm {result['wer_normalized']:.4f} raw {result['wer']:.4f}  " \
           f"exact: {exact}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--judge", type=Path, required=True)
    parser.add_argument("--jargon", type=Path, default=HERE / "devops_jargon.txt")
    parser.add_argument("--set", action="append", default=[], dest="settings", metavar="SECTION.KEY=VALUE")
    parser.add_argument("--bench", type=Path, default=BENCH)
    parser.add_argument("--adapter-only", action="store_true",
                        help="score only the promoted adapter with biasing (the base model's figures do not change "
                             "with the chain)")
    args = parser.parse_args()
    root = fresh_workspace(args.workspace, args.settings)
    shutil.copyfile(args.jargon, root / "inbox" / "jargon.txt")
    adapter = run_chain(root)
    sets = {"judge (flite voices)": args.judge.resolve(),
            **{label: args.bench.resolve() / path for label, path in GENERAL.items()}}
    results = {}
    for label, manifest in sets.items():
        general = label in GENERAL
        for model, path in (("base", None), ("adapter", adapter)):
            if (model == "adapter" and path is None) or (model == "base" and args.adapter_only):
                continue
            for bias in ("bias",) if args.adapter_only else ("bias", "no bias"):
                result = evaluate(root, manifest, path, *(["--no-bias"] if bias == "no bias" else []))
                results[f"{label} | {model} | {bias}"] = brief(result)
                print(f"{label:22} {model:8} {bias:8} {summary(result, general)}", flush=True)
    (root / "jargon_only_results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
