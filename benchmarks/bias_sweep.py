"""Jargon biasing: term recall, false alarms per 1,000 words and WER on the other words, per boost and beam width.

    python benchmarks/bias_sweep.py --jargon LIST --boosts 0,2,4 --beams 1,4 MANIFEST... [--model moonshine-cpp]
        [--adapter DIR]

Loads the model once and transcribes every manifest at every boost (0 = no biasing) and beam width. For each: raw and
normalized WER, term recall, false alarms (per 1,000 reference words) and the error on the words outside
the terms (substitutions and deletions of non-term reference words plus insertions away from a term, over
the non-term reference words, normalized), the three figures Moonshine's harness reports for its biasing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import jiwer

from vocabd.asr.biasing import JargonBias
from vocabd.asr.model import load_asr
from vocabd.asr.transcribe import transcribe
from vocabd.audio import load_audio
from vocabd.scoring.metrics import normalize, overall_recall, term_stats, wer
from vocabd.jargon import parse_jargon
from vocabd.manifest import read_manifest


def term_positions(ref_words: list[str], terms: list[list[str]]) -> set[int]:
    """Indexes of normalized reference words that belong to a term occurrence."""
    out: set[int] = set()
    for term in terms:
        for i in range(len(ref_words) - len(term) + 1):
            if term and ref_words[i : i + len(term)] == term:
                out.update(range(i, i + len(term)))
    return out


def other_word_errors(ref: str, hyp: str, terms: list[list[str]]) -> tuple[int, int]:
    """(errors, words) on the reference words outside the terms, normalized."""
    ref_words, hyp_words = normalize(ref).split(), normalize(hyp).split()
    inside = term_positions(ref_words, terms)
    words = len(ref_words) - len(inside)
    if not ref_words:
        return len(hyp_words), 0
    if not hyp_words:
        return words, words
    errors = 0
    for chunk in jiwer.process_words(" ".join(ref_words), " ".join(hyp_words)).alignments[0]:
        if chunk.type in ("substitute", "delete"):
            errors += sum(1 for i in range(chunk.ref_start_idx, chunk.ref_end_idx) if i not in inside)
        elif chunk.type == "insert":
            near = {chunk.ref_start_idx - 1, chunk.ref_start_idx}
            errors += 0 if near & inside else chunk.hyp_end_idx - chunk.hyp_start_idx
    return errors, words


def score(refs: list[str], hyps: list[str], terms: list[str]) -> dict:
    stats = term_stats(refs, hyps, terms)
    normalized_terms = [normalize(t).split() for t in terms]
    other = [other_word_errors(r, h, normalized_terms) for r, h in zip(refs, hyps)]
    words = sum(len(r.split()) for r in refs)
    false_alarms = sum(s.false_alarms for s in stats.values())
    other_words = sum(w for _, w in other)
    return {
        "clips": len(refs), "words": words,
        "wer": round(wer(refs, hyps), 4), "wer_normalized": round(wer(refs, hyps, normalized=True), 4),
        "term_expected": sum(s.expected for s in stats.values()),
        "term_recall": None if (r := overall_recall(stats)) is None else round(r, 3),
        "false_alarms": false_alarms, "false_alarms_per_1000": round(1000 * false_alarms / max(words, 1), 2),
        "other_wer": round(sum(e for e, _ in other) / max(other_words, 1), 4),
        "per_term": {t: [s.hits, s.expected, s.false_alarms] for t, s in stats.items() if s.expected or s.false_alarms},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifests", nargs="+", type=Path)
    parser.add_argument("--jargon", type=Path, required=True)
    parser.add_argument("--boosts", default="0,2,4")
    parser.add_argument("--start-shares", default="0.5", help="comma list: the first-token bonus as a share of boost")
    parser.add_argument("--beams", default="4", help="comma list: beam widths (1 = greedy)")
    parser.add_argument("--model", default="moonshine-cpp")
    parser.add_argument("--adapter", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=None, help="JSON lines with every result and hypothesis")
    args = parser.parse_args()

    terms = [t.written for t in parse_jargon(args.jargon)]
    asr = load_asr(args.model, args.adapter)
    sets = {}
    for manifest in args.manifests:
        clips, problems = read_manifest(manifest, allow_outside=True)
        if problems:
            print(f"{manifest}: {len(problems)} rows skipped", file=sys.stderr)
        sets[manifest] = (clips, [load_audio(c.audio) for c in clips])
    out = args.output.open("w", encoding="utf-8") if args.output else None
    grid = [(share, boost, beams) for share in args.start_shares.split(",") for boost in args.boosts.split(",")
            for beams in args.beams.split(",")]
    for share, boost, beams in [(float(s), float(b), int(n)) for s, b, n in grid]:
        biased = replace(asr, bias=JargonBias(asr.tokenizer, terms, boost, share) or None, beams=beams)
        for manifest, (clips, audios) in sets.items():
            start = time.perf_counter()
            hyps = transcribe(biased, audios)
            result = score([c.text for c in clips], hyps, terms)
            result |= {"manifest": str(manifest), "boost": boost, "start_share": share, "beams": beams,
                       "adapter": str(args.adapter or ""), "seconds": round(time.perf_counter() - start, 1)}
            print(json.dumps({k: v for k, v in result.items() if k != "per_term"}), flush=True)
            print("   per term [hits, expected, false alarms]:", json.dumps(result["per_term"]), flush=True)
            if out:
                rows = [{"id": c.id, "ref": c.text, "hyp": h} for c, h in zip(clips, hyps)]
                out.write(json.dumps(result | {"rows": rows}, ensure_ascii=False) + "\n")
                out.flush()


if __name__ == "__main__":
    main()
