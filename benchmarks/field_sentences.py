"""What a list's synthetic sentences look like: each term's field, the share that carries software or office
words, and a sample to read.

    .venv/bin/python benchmarks/field_sentences.py benchmarks/legal_jargon.txt [--count 500] [--show 20]

The word list is the one tests/unit/test_fields.py checks against; the sentences are the chain's (seed 0, no
recordings), made the way the synthesize stage makes them.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections import Counter
from pathlib import Path

from vocabd.synthesis.fields import detect_fields
from vocabd.jargon import parse_jargon
from vocabd.synthesis.sentences import generate_sentences

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))
from test_fields import SOFTWARE_OR_OFFICE  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("jargon", type=Path, nargs="+")
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--show", type=int, default=20)
    args = parser.parse_args()
    for path in args.jargon:
        terms = parse_jargon(path)
        fields = Counter(g.field for g in detect_fields(terms).values())
        sentences = generate_sentences(terms, args.count, seed=0)
        flagged = [s for s in sentences if {w.lower() for w in re.findall(r"[A-Za-z'-]+", s.text)} & SOFTWARE_OR_OFFICE]
        print(f"## {path.name}: {len(terms)} terms, fields {dict(fields)}; {len(flagged)} of {len(sentences)} "
              f"sentences ({len(flagged) / len(sentences):.1%}) carry software/office words")
        for s in flagged[:5]:
            print(f"   flagged: {s.text}")
        for s in random.Random(1).sample(sentences, args.show):
            print(f"- {s.text}")
        print()


if __name__ == "__main__":
    main()
