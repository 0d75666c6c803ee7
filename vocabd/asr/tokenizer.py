"""Rebuild Moonshine's tokenizer from moonshine-cpp's `tokenizer.bin` as a Hugging Face fast tokenizer.

`tokenizer.bin` is the vocabulary only: for each id in order, a length byte then that many bytes. It is a
Llama-style SentencePiece BPE model: ids 0-2 are `<unk> <s> </s>`, ids 3-258 the byte-fallback tokens
(stored as the raw byte), then pieces with `▁` for a space, ranked best-first. SentencePiece BPE merges the
adjacent pair whose joined piece ranks best, so the merge list can be rebuilt from the vocabulary order.
"""

from __future__ import annotations

from pathlib import Path

from vocabd.errors import VocabdError

SPACE = "\u2581"  # ▁, SentencePiece's visible space
SPECIALS = ("<unk>", "<s>", "</s>")
BYTE_TOKENS = 256
FIRST_PIECE = len(SPECIALS) + BYTE_TOKENS  # 259
MODEL_VOCAB = 32768  # the model's embedding rows; ids past the file's entries are reserved


class TokenizerFileError(VocabdError):
    def __init__(self, path: Path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = path, problem


def read_tokenizer_bin(path: Path) -> list[bytes]:
    """The raw entries of `tokenizer.bin`, in id order."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise TokenizerFileError(path, f"cannot read: {e.strerror or e}") from e
    entries, at = [], 0
    while at < len(data):
        length = data[at]
        if at + 1 + length > len(data):
            raise TokenizerFileError(path, f"entry {len(entries)} runs past the end of the file")
        entries.append(data[at + 1:at + 1 + length])
        at += 1 + length
    return entries


def reserved_token(k: int) -> str:
    return f"<<ST_{k}>>"


def vocabulary(entries: list[bytes], path: Path, size: int = MODEL_VOCAB) -> dict[str, int]:
    """Token string → id: specials, `<0xNN>` byte tokens, the UTF-8 pieces, then reserved `<<ST_k>>` up to `size`."""
    if len(entries) < FIRST_PIECE or [e.decode("latin-1") for e in entries[:3]] != list(SPECIALS):
        raise TokenizerFileError(path, f"expected {SPECIALS} as ids 0-2 and {BYTE_TOKENS} byte tokens after them")
    if len(entries) > size:
        raise TokenizerFileError(path, f"{len(entries)} entries do not fit a vocabulary of {size}")
    tokens = list(SPECIALS) + [f"<0x{b:02X}>" for b in range(BYTE_TOKENS)]
    for token_id, entry in enumerate(entries[FIRST_PIECE:], start=FIRST_PIECE):
        try:
            tokens.append(entry.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise TokenizerFileError(path, f"entry {token_id} is not valid UTF-8 ({entry!r})") from e
    tokens += [reserved_token(k) for k in range(size - len(entries))]
    vocab = {token: token_id for token_id, token in enumerate(tokens)}
    if len(vocab) != len(tokens):
        seen: set[str] = set()
        duplicate = next(t for t in tokens if t in seen or seen.add(t))
        raise TokenizerFileError(path, f"token {duplicate!r} appears twice")
    return vocab


def bpe_merges(pieces: dict[str, int]) -> list[tuple[str, str]]:
    """Every split of a piece into two pieces, ranked by the joined piece's id (best first).

    `pieces` holds only the mergeable pieces (no specials, byte or reserved tokens).
    """
    ranked = []
    for piece, piece_id in pieces.items():
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in pieces and right in pieces:
                ranked.append((piece_id, pieces[left], pieces[right], left, right))
    ranked.sort()
    return [(left, right) for *_, left, right in ranked]


def build_tokenizer(path: Path):
    """A `tokenizers.Tokenizer` equivalent to the SentencePiece model behind `tokenizer.bin`."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors

    entries = read_tokenizer_bin(path)
    vocab = vocabulary(entries, Path(path))
    pieces = {token: token_id for token, token_id in vocab.items() if FIRST_PIECE <= token_id < len(entries)}
    bpe = models.BPE(vocab=vocab, merges=bpe_merges(pieces), unk_token="<unk>", byte_fallback=True, fuse_unk=True)
    tokenizer = Tokenizer(bpe)
    # SentencePiece's dummy prefix plus visible spaces; no pre-tokenizer, so runs of spaces stay pieces.
    tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend(SPACE), normalizers.Replace(" ", SPACE)])
    tokenizer.decoder = decoders.Sequence([decoders.Replace(SPACE, " "), decoders.ByteFallback(), decoders.Fuse(),
                                           decoders.Strip(content=" ", left=1, right=0)])
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> $B </s>", special_tokens=[("<s>", 1), ("</s>", 2)])
    reserved = [token for token, token_id in vocab.items() if token_id >= len(entries)]
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in (*SPECIALS, *reserved)])
    return tokenizer


def build_fast_tokenizer(path: Path):
    """The rebuilt tokenizer wrapped as a transformers `PreTrainedTokenizerFast`."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(path), bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        pad_token="</s>", clean_up_tokenization_spaces=False, model_input_names=["input_ids", "attention_mask"])
