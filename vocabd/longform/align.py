"""Give each piece of a long recording its part of the transcript, by aligning the base model's words for
the pieces to the reference words (a word-level edit-distance alignment)."""

from __future__ import annotations

from dataclasses import dataclass

from vocabd.scoring.metrics import normalize, wer

MAX_PIECE_WER = 0.25  # a piece whose own words disagree more than this with its share is left out


@dataclass
class PieceText:
    text: str  # the piece's share of the reference, original spelling and punctuation
    hypothesis: str
    wer: float
    reason: str = ""  # why it is left out; empty when kept

    @property
    def kept(self) -> bool:
        return not self.reason


def word_key(word: str) -> str:
    return normalize(word)


def align(ref: list[str], hyp: list[str]) -> list[int | None]:
    """For each reference word, the index of the hypothesis word it is aligned to (None: deleted)."""
    n, m = len(ref), len(hyp)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        cost[i][0] = i
    for j in range(m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            same = word_key(ref[i - 1]) == word_key(hyp[j - 1])
            cost[i][j] = min(cost[i - 1][j - 1] + (0 if same else 1), cost[i - 1][j] + 1, cost[i][j - 1] + 1)
    links: list[int | None] = [None] * n
    i, j = n, m
    while i > 0 and j > 0:
        same = word_key(ref[i - 1]) == word_key(hyp[j - 1])
        if cost[i][j] == cost[i - 1][j - 1] + (0 if same else 1):
            links[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif cost[i][j] == cost[i - 1][j] + 1:
            i -= 1
        else:
            j -= 1
    return links


def share_transcript(reference: str, hypotheses: list[str]) -> list[PieceText]:
    """The reference cut into one part per piece, each checked against that piece's own hypothesis."""
    ref = reference.split()
    hyp_words = [(piece, word) for piece, text in enumerate(hypotheses) for word in text.split()]
    links = align(ref, [word for _, word in hyp_words])
    owner: list[int] = []
    for i, link in enumerate(links):  # a deleted word goes with the word before it (the first with piece 0)
        owner.append(hyp_words[link][0] if link is not None else (owner[-1] if owner else 0))
    for i in range(1, len(owner)):  # alignment keeps order, so owners never go back
        owner[i] = max(owner[i], owner[i - 1])
    pieces = []
    for piece, hypothesis in enumerate(hypotheses):
        indices = [i for i, o in enumerate(owner) if o == piece]
        text = " ".join(ref[i] for i in indices)
        score = wer([text], [hypothesis], normalized=True) if text else 1.0
        edges = ([indices[0]] if indices and piece > 0 else []) + \
                ([indices[-1]] if indices and piece < len(hypotheses) - 1 else [])
        pieces.append(PieceText(text, hypothesis, score, _problem(indices, edges, links, ref, hyp_words, piece, score)))
    return pieces


def _problem(indices: list[int], edges: list[int], links: list[int | None], ref: list[str],
             hyp_words: list[tuple[int, str]], piece: int, score: float) -> str:
    if not indices:
        return "no words of the transcript align to this piece"
    if score > MAX_PIECE_WER:
        return f"the base model's words for this piece disagree with its share of the transcript (WER {score:.2f})"
    for edge in edges:  # the words at a cut decide where the transcript is split
        link = links[edge]
        if link is None or hyp_words[link][0] != piece or word_key(hyp_words[link][1]) != word_key(ref[edge]):
            return f"the cut next to {ref[edge]!r} cannot be placed with certainty"
    return ""
