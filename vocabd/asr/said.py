"""What is said for a jargon term, and a transcript's said forms written as the term.

A model that has not learned a term (the base model before any training, or a voice unlike the training's)
writes what it hears: "Kubernetes" for `k8s`, "Cuda" for `CUDA`, or a near miss of it ("kubirnets"). Only said
forms that cannot be ordinary speech are used: each word two letters or more (spelled letters are written too
many ways) and one word at least not in the dictionary ("kube control", not "my sequel" for `mysql`, nor "jason"
for `json`).

A near miss is up to three words, one at least not in the dictionary and none a term or written with a capital
inside (`PostgreSQL`: a name the model meant), whose letters differ from those of a said form of five letters or
more in at most one letter in three, the first letter the same. Ordinary speech rarely makes one: names are the
words it writes outside the dictionary, and few lie that near a said form.
"""

from __future__ import annotations

import re
from typing import Iterable

from rapidfuzz.distance import Levenshtein

from vocabd.jargon import Term, is_dictionary_word

NEAR_LETTERS = 5  # shorter said forms are rewritten only as said
NEAR_SHARE = 3  # a near miss differs in at most one letter in this many
NEAR_WORDS = 3
_WORD = re.compile(r"[A-Za-z]+")


def said_forms(term: Term) -> tuple[str, ...]:
    """What is said for `term`, lower-cased, where the model would write that instead of the term and it cannot
    be ordinary speech: 'kubernetes' for k8s, 'cuda' for CUDA; none for WER ("W E R") or json ("jason")."""
    out = []
    for said in term.spoken_forms:
        words = said.lower().split()
        if all(w.isalpha() and len(w) > 1 for w in words) and not all(map(is_dictionary_word, words)):
            out.append(" ".join(words))
    return tuple(f for f in dict.fromkeys(out) if f != term.written)


class SaidForms:
    """The said forms of a list's terms; `rewrite` writes them, and their near misses, as the terms."""

    def __init__(self, terms: Iterable[Term]):
        terms = list(terms)
        self.written: dict[str, str] = {}  # said form -> written form
        for term in terms:
            for said in said_forms(term):
                self.written.setdefault(said, term.written)
        self._terms = {term.written.lower() for term in terms}
        self._exact = _said_pattern(self.written) if self.written else None
        self._near: dict[str, list[tuple[str, str]]] = {}  # first letter -> (letters, written form)
        for said, written in self.written.items():
            letters = said.replace(" ", "")
            if len(letters) >= NEAR_LETTERS:
                self._near.setdefault(letters[0], []).append((letters, written))

    def __len__(self) -> int:
        return len(self.written)

    def rewrite(self, text: str) -> str:
        """`text` with each said form of a term ("kube control") or a near miss of one ("kubirnets") written
        as the term ("kubectl", "k8s")."""
        if self._exact is None:
            return text
        text = self._exact.sub(lambda m: self.written[" ".join(m.group().lower().split())], text)
        return self._rewrite_near(text)

    def _rewrite_near(self, text: str) -> str:
        words = list(_WORD.finditer(text))
        out, done, i = [], 0, 0
        while i < len(words):
            found = self._near_miss(text, words[i : i + NEAR_WORDS])
            if found is None:
                i += 1
                continue
            count, written = found
            out += [text[done : words[i].start()], written]
            done, i = words[i + count - 1].end(), i + count
        return "".join(out) + text[done:]

    def _near_miss(self, text: str, words: list[re.Match]) -> tuple[int, str] | None:
        """(words taken, written form) of the nearest said form that the first of `words` start, if any."""
        best = None
        for count in range(1, len(words) + 1):
            span = words[:count]
            if any(text[a.end() : b.start()].strip() for a, b in zip(span, span[1:])):
                break  # only words apart by spaces
            if not _standalone(text, span[0].start(), span[-1].end()):
                continue
            spelled = [w.group() for w in span]
            if not self._may_be_near(spelled):
                continue
            letters = "".join(spelled).lower()
            for said, written in self._near.get(letters[0], ()):
                limit = len(said) // NEAR_SHARE
                distance = Levenshtein.distance(letters, said, score_cutoff=limit)
                if distance <= limit and (best is None or distance < best[0]):
                    best = (distance, count, written)
        return None if best is None else best[1:]

    def _may_be_near(self, words: list[str]) -> bool:
        if any(w.lower() in self._terms or any(c.isupper() for c in w[1:]) for w in words):
            return False
        return not all(map(is_dictionary_word, words))


def _standalone(text: str, start: int, end: int) -> bool:
    """The words from `start` to `end` are not part of an address, a path or a name with digits or symbols."""
    before = text[start - 1] if start else " "
    after, then = (text[end : end + 2] + "  ")[:2]
    if before.isalnum() or before in "@/\\._-" or after.isalnum() or after in "@/\\_-":
        return False
    return not (after == "." and then.isalnum())


def _said_pattern(forms: Iterable[str]) -> re.Pattern:
    """Any of `forms` as whole words, in any case and spacing; the longest first."""
    spelled = (r"\s+".join(re.escape(w) for w in said.split()) for said in sorted(forms, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{'|'.join(spelled)})(?!\w)", re.IGNORECASE)
