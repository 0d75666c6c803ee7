"""Run-time jargon biasing: a token-prefix trie of the terms' written forms and a logit bonus in generation.

While the decoder writes, every suffix of its output that is the start of a term makes the term's next token
more likely by `boost * (1 + ln depth)` (depth = term tokens already written), so a started term is finished;
the first token of a term gets a smaller bonus. Each term is in the trie twice: as the model writes it at a
word start (`▁k ub ect l`) and bare (`k ub ect l`, after `(` or `/`); the bare form only counts as started
after a token that ends in a symbol, never inside a word, and its first token gets no bonus.

A term said otherwise than written is in the trie a third way: as the model writes what is said ("kubernetes"
for `k8s`, "cuda" for `CUDA`; said.py), and the transcript gets the written form in its place (`rewrite`).

A bonus is kept only by a term that is finished, and only the first time a hypothesis writes that term: when
the output leaves a term half-written, or finishes one it wrote before, what it was given for it is taken back.
Many terms start with a common token (`▁k`, `▁W`, `▁`), and without the take-back every hypothesis that merely
passes through one would keep the bonus; in beam search (transcribe.py) that bends ordinary speech toward the
terms' first tokens, and a hypothesis that loops on a term ("250ms. 250ms. 250ms.") would be paid per loop.

Terms that start with the same token keep the same bonus when finished: the least of theirs. The bonus grows with
depth, so a term the tokenizer cuts into more pieces would collect more, and the bias, not the audio, would choose
between terms that start alike: "kubernetes" (`▁k ubernetes`, said for `k8s`) lost to `kubectl` (`▁k ub ect l`)
in clips that said "kubernetes" plainly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from vocabd.asr.model import Asr
from vocabd.asr.said import SaidForms
from vocabd.config import Config
from vocabd.jargon import Term, parse_jargon, spoken_form

WORD_START = "▁"  # SentencePiece's mark for a leading space
START_SHARE = 0.5  # the bonus for a term's first token, as a share of `boost`


@dataclass
class TrieNode:
    children: dict[int, "TrieNode"] = field(default_factory=dict)
    term: str | None = None  # the whole term that ends here

    @property
    def ends(self) -> bool:
        return self.term is not None


class TokenTrie:
    """Token-id sequences sharing their prefixes."""

    def __init__(self, sequences: Iterable[Sequence[int]] = ()):
        self.root = TrieNode()
        self.depth = 0
        for seq in sequences:
            self.add(seq)

    def add(self, seq: Sequence[int], term: str = "") -> None:
        if not seq:
            return
        node = self.root
        for token in seq:
            node = node.children.setdefault(int(token), TrieNode())
        node.term = term
        self.depth = max(self.depth, len(seq))

    def walk(self, tokens: Sequence[int]) -> TrieNode | None:
        """The node reached by following `tokens` from the root, or None when they leave the trie."""
        node = self.root
        for token in tokens:
            node = node.children.get(int(token))
            if node is None:
                return None
        return node

    def __contains__(self, seq: Sequence[int]) -> bool:
        node = self.walk(seq)
        return node is not None and node.ends


def term_variants(tokenizer: Any, written: str) -> tuple[list[int], list[int]]:
    """(at a word start, bare) token ids of `written`, tokenized the way the model's tokenizer writes it."""
    spaced = list(tokenizer(written, add_special_tokens=False).input_ids)
    bare = _bare_ids(tokenizer, written)
    return spaced, bare


def _bare_ids(tokenizer: Any, written: str) -> list[int]:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # the BPE model alone: no word-start mark prepended
        pieces = [t.value for t in backend.model.tokenize(written.replace(" ", WORD_START))]
        return [int(i) for i in tokenizer.convert_tokens_to_ids(pieces)]
    spaced = tokenizer(written, add_special_tokens=False).input_ids
    first = tokenizer.convert_ids_to_tokens(spaced[:1])
    return list(spaced[1:]) if first and first[0] == WORD_START else list(spaced)


class JargonBias:
    """A transformers LogitsProcessor (duck-typed: generate() only calls it) that favours the jargon's terms;
    `rewrite` puts the written form in place of a said one in its transcripts."""

    def __init__(self, tokenizer: Any, terms: Sequence[Term | str], boost: float, start_share: float = START_SHARE):
        chosen = {t.written: t for t in map(_as_term, terms) if t.written.strip()}
        self.terms = tuple(chosen)
        self.boost = float(boost)
        self.start_bonus = self.boost * start_share
        self.spaced, self.bare = TokenTrie(), TokenTrie()
        for written in chosen:
            spaced, bare = term_variants(tokenizer, written)
            self.spaced.add(spaced, written)
            if bare != spaced:
                self.bare.add(bare, written)
        self.said = SaidForms(chosen.values())
        for said, written in self.said.written.items():
            for cased in {said, said.capitalize(), said.title()} - {written}:
                self.spaced.add(term_variants(tokenizer, cased)[0], written)
        self._caps = {**self._shared_start_caps(self.spaced, self.start_bonus),
                      **self._shared_start_caps(self.bare, 0.0)}  # (first token, term) -> most it keeps
        self.skip = set(getattr(tokenizer, "all_special_ids", []) or [])
        self._ends_in_symbol = _symbol_endings(tokenizer)
        self._accounts: dict[tuple[int, ...], Account] = {}  # per written prefix, for the generation under way

    def __bool__(self) -> bool:
        return bool(self.terms) and self.boost > 0

    def describe(self) -> dict:
        return {"terms": len(self.terms), "boost": self.boost, "start_bonus": self.start_bonus,
                "said_forms": len(self.said)}

    def _next_bonus(self, depth: int) -> float:
        """The bonus for a term's next token once `depth` of its tokens are written."""
        return self.boost * (1.0 + math.log(depth))

    def _path_bonus(self, depth: int, start: float) -> float:
        """What a term of `depth` tokens collects when written to the end."""
        return start + sum(self._next_bonus(d) for d in range(1, depth))

    def _shared_start_caps(self, trie: TokenTrie, start: float) -> dict[tuple[int, str], float]:
        """(first token, term) -> the most that term keeps when finished: what the shortest other term with the
        same first token collects, so that the bias does not choose between terms that start alike."""
        caps = {}
        for first, node in trie.root.children.items():
            least: dict[str, float] = {}  # term -> the bonus of its shortest form here
            for term, depth in _ends(node, 1):
                least[term] = min(least.get(term, math.inf), self._path_bonus(depth, start))
            ranked = sorted(least, key=least.__getitem__)
            if len(ranked) < 2:
                continue
            for term in ranked:
                caps[first, term] = least[ranked[1] if term == ranked[0] else ranked[0]]
        return caps

    def rewrite(self, text: str) -> str:
        """`text` with what is said for a term ("kube control", "kubirnets") written as the term."""
        return self.said.rewrite(text)

    def bonuses(self, written: Sequence[int]) -> dict[int, float]:
        """Token id -> logit bonus for the next token after the tokens `written` so far."""
        out: dict[int, float] = {}
        if self.start_bonus > 0:
            for token in self.spaced.root.children:  # a bare start is only continued, never pushed
                out[token] = self.start_bonus
        for depth, node in self._matches(written):
            bonus = self._next_bonus(depth)
            for token in node.children:
                out[token] = max(out.get(token, 0.0), bonus)
        return out

    def _matches(self, written: Sequence[int]) -> Iterator[tuple[int, TrieNode]]:
        """(depth, node) of every term that the end of `written` has started (or just finished)."""
        for trie in (self.spaced, self.bare):
            for depth in range(1, min(trie.depth, len(written)) + 1):
                begin = len(written) - depth
                if trie is self.bare and begin > 0 and written[begin - 1] not in self._ends_in_symbol:
                    continue
                node = trie.walk(written[begin:])
                if node is not None:
                    yield depth, node

    def _account(self, written: tuple[int, ...]) -> "Account":
        """What `written` has collected, built on the longest prefix already accounted for (the last step's)."""
        known = len(written)
        while known and written[:known] not in self._accounts:
            known -= 1
        account = self._accounts[written[:known]] if known else Account()
        for end in range(known + 1, len(written) + 1):
            prefix = written[: end - 1]
            account = self._advance(account, prefix, written[end - 1], self.bonuses(prefix))
            self._accounts[written[:end]] = account
        return account

    def _advance(self, account: "Account", written: tuple[int, ...], token: int, bonus: dict[int, float]) -> "Account":
        """The account after `token` follows `written`: its bonus added; a finished term's tokens kept (the
        first time the hypothesis writes that term: a loop of it earns nothing); the tokens of a term still open
        counted; those of a term left half-written dropped."""
        now = written + (token,)
        gains = account.gains + (bonus.get(token, 0.0),)
        kept = list(account.kept) + [False]
        finished = set(account.finished)
        open_depth = 0
        for depth, node in self._matches(now):
            if node.ends and node.term not in account.finished:
                kept[-depth:] = [True] * depth
                finished.add(node.term)
                cap = self._caps.get((now[-depth], node.term))
                if cap is not None:
                    gains = gains[:-1] + (min(gains[-1], cap - sum(gains[-depth:-1])),)
            if node.children:
                open_depth = max(open_depth, depth)
        first_open = len(now) - open_depth
        total = sum(g for i, (g, k) in enumerate(zip(gains, kept)) if k or i >= first_open)
        return Account(gains, tuple(kept), total, sum(g for g, k in zip(gains, kept) if k), frozenset(finished))

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if not self:
            return scores
        import torch

        if input_ids.shape[-1] <= 1:  # a new generation: the accounts of the last one are of no use
            self._accounts.clear()
        for row, ids in enumerate(input_ids.tolist()):
            written = tuple(t for t in ids if t not in self.skip)
            account = self._account(written)
            gains = self.bonuses(written)
            take_back = account.total - account.kept_total  # lost unless the next token goes on with the term
            bonus = dict(gains)
            for token in {t for _, node in self._matches(written) for t in node.children}:
                bonus[token] = self._advance(account, written, token, gains).total - account.total + take_back
            if take_back:
                scores[row] -= take_back
            if bonus:
                index = torch.tensor(list(bonus), dtype=torch.long, device=scores.device)
                values = torch.tensor(list(bonus.values()), dtype=scores.dtype, device=scores.device)
                scores[row].index_add_(0, index, values)
        return scores


@dataclass(frozen=True)
class Account:
    """The bonus a written prefix has collected, per token; `kept`: the token is in a finished term."""
    gains: tuple[float, ...] = ()
    kept: tuple[bool, ...] = ()
    total: float = 0.0  # what the hypothesis holds now: the finished terms' gains and the open term's
    kept_total: float = 0.0  # the finished terms' alone
    finished: frozenset[str] = frozenset()  # terms written (and paid for) already


def _ends(node: TrieNode, depth: int) -> Iterator[tuple[str, int]]:
    """(term, depth) of every term that ends at or below `node`, which is at `depth`."""
    if node.term is not None:
        yield node.term, depth
    for child in node.children.values():
        yield from _ends(child, depth + 1)


def _symbol_endings(tokenizer: Any) -> set[int]:
    """Ids of tokens after which a term may start without a space: their text ends in a symbol."""
    out = set()
    for token_id, piece in enumerate(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))):
        if piece is None:
            continue
        if piece.startswith("<0x") and piece.endswith(">"):  # byte fallback
            out.add(token_id)
        elif piece and not piece[-1].isalnum() and piece != WORD_START:
            out.add(token_id)
    return out


def _as_term(term: Term | str) -> Term:
    return term if isinstance(term, Term) else Term(written=term, spoken=spoken_form(term))


def with_bias(asr: Asr, terms: Sequence[Term | str], boost: float) -> Asr:
    """`asr` whose transcriptions favour `terms` (a bare string: a written form whose spoken forms are derived);
    the same model without bias when there are none."""
    bias = JargonBias(asr.tokenizer, terms, boost)
    return replace(asr, bias=bias if bias else None)


def jargon_terms(path: Path | None) -> list[Term]:
    """A jargon list's terms; none when there is no list."""
    return parse_jargon(path) if path is not None and path.is_file() else []


def configured_decoding(asr: Asr, terms: Sequence[Term | str], config: Config, no_bias: bool = False) -> Asr:
    """`asr` decoding as the settings say: `[decode] beams` hypotheses, biased toward `terms` as `[bias]` says
    unless biasing is off (config or `--no-bias`)."""
    asr = replace(asr, beams=config.decode.beams)
    if no_bias or not config.bias.enabled:
        return replace(asr, bias=None)
    return with_bias(asr, terms, config.bias.boost)
