"""Words of a correction the model got wrong and that are no dictionary word: proposed jargon terms
(`data/proposed_terms.json`), shown by `vocabd status` and accepted with `vocabd terms accept`."""

from __future__ import annotations

import re

from vocabd.corrections.store import read_proposed
from vocabd.scoring.metrics import normalize
from vocabd.files import write_json
from vocabd.jargon import is_dictionary_word
from vocabd.longform.align import align
from vocabd.workspace import PROPOSED_TERMS, Workspace

_EDGES = re.compile(r"^[\"'(\[{,.;:!?]+|[\"')\]},.;:!?]+$")


def misheard_words(hypothesis: str, correction: str) -> list[str]:
    """Words of `correction` the model did not write (aligned to nothing or to another word)."""
    fixed, heard = correction.split(), hypothesis.split()
    links = align(fixed, heard)
    found = []
    for word, link in zip(fixed, links):
        if link is None or normalize(heard[link]) != normalize(word):
            found.append(_EDGES.sub("", word))
    return [w for w in found if w]


def propose_terms(hypothesis: str, correction: str, known_terms: set[str]) -> list[str]:
    """Misheard words that are no dictionary word and not already jargon, in order, once each."""
    seen: list[str] = []
    for word in misheard_words(hypothesis, correction):
        if word not in seen and word not in known_terms and not is_dictionary_word(word):
            seen.append(word)
    return seen


def add_proposed(ws: Workspace, terms: list[str], kept_id: str) -> None:
    proposed = read_proposed(ws)
    for term in terms:
        entry = proposed.setdefault(term, {"from": []})
        if kept_id not in entry["from"]:
            entry["from"].append(kept_id)
    write_json(ws.data / PROPOSED_TERMS, proposed)


def remove_proposed(ws: Workspace, terms: list[str]) -> None:
    proposed = read_proposed(ws)
    for term in terms:
        proposed.pop(term, None)
    write_json(ws.data / PROPOSED_TERMS, proposed)


def known_terms(ws: Workspace) -> set[str]:
    from vocabd.jargon import parse_jargon

    path = ws.jargon
    try:
        return {t.written for t in parse_jargon(path)} if path.is_file() else set()
    except Exception:  # noqa: BLE001 - a broken list only means nothing is filtered out
        return set()
