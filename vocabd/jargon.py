"""Jargon lists (README.md, 'What to drop into inbox/'): one term a line, `written | spoken`, `#` comments.

The written form is the training label; the spoken form is what a synthesizer is given to say.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

from vocabd.errors import VocabdError
from vocabd.log import get_logger

MAX_BYTES = 1_000_000
MAX_TERMS = 5_000
MAX_TERM_CHARS = 100

log = get_logger(__name__)


@dataclass(frozen=True)
class Term:
    written: str  # the label the model must learn to output
    spoken: str  # what the synthesizer says
    given: bool = field(default=False, compare=False)  # the spoken form was written in the list (not derived)

    @cached_property
    def alternatives(self) -> tuple[str, ...]:
        """Other ways people say it: derived forms only, a list's own form is final. Derived on first use: only
        the synthesizer needs them, and a name's other reading looks words up in a dictionary."""
        return () if self.given else spoken_forms(self.written)[1:]

    @property
    def spoken_forms(self) -> tuple[str, ...]:
        return (self.spoken, *self.alternatives)


@dataclass(frozen=True)
class LeftOut:
    """A line of a list whose term cannot be said: nothing spoken would carry a letter or digit."""

    line: int
    written: str
    raw: str  # the line as the list has it

    @property
    def reason(self) -> str:
        return f"line {self.line}: {self.written!r} cannot be said (its spoken form has no letter or digit)"


class JargonError(VocabdError):
    def __init__(self, path: Path, line: int | None, problem: str):
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.problem = path, line, problem


def parse_jargon(path: Path, left_out: list[LeftOut] | None = None) -> list[Term]:
    """Read a jargon list; every term once, in file order. Raises JargonError naming the file and line."""
    path = Path(path)
    return parse_jargon_text(_read_text(path), path, left_out=left_out)


def parse_jargon_text(text: str, path: Path, allow_empty: bool = False,
                      left_out: list[LeftOut] | None = None) -> list[Term]:
    """The one jargon parser (inbox drops, data/jargon.txt, the synthesizer): `path` names the text's file.

    A term that cannot be said is left out (a sentence would be labelled with words its audio never says);
    each one is logged and, when `left_out` is given, added to it."""
    terms: dict[str, Term] = {}
    unsayable: list[LeftOut] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        term = _parse_line(raw, path, number)
        if term is None:
            continue
        if not any(c.isalnum() for c in term.spoken):
            unsayable.append(LeftOut(number, term.written, raw.strip()))
            log.warning("jargon_term_left_out", file=str(path), reason=unsayable[-1].reason)
            continue
        if term.written in terms:
            if terms[term.written].spoken != term.spoken:
                log.warning("jargon_duplicate", file=str(path), line=number, term=term.written,
                            kept=terms[term.written].spoken)
            continue
        terms[term.written] = term
        if len(terms) > MAX_TERMS:
            raise JargonError(path, number, f"more than {MAX_TERMS} terms; split the list or trim it")
    if left_out is not None:
        left_out.extend(unsayable)
    if not terms and unsayable and not allow_empty:
        raise JargonError(path, None, f"no term that can be said: {'; '.join(u.reason for u in unsayable[:5])}")
    if not terms and not allow_empty:
        raise JargonError(path, None, "no terms found (only blank lines and comments)")
    return list(terms.values())


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise JargonError(path, None, "jargon list not found")
    size = path.stat().st_size
    if size == 0:
        raise JargonError(path, None, "jargon list is empty (0 bytes)")
    if size > MAX_BYTES:
        raise JargonError(path, None, f"jargon list is {size} bytes; more than {MAX_BYTES} is not a term list")
    data = path.read_bytes()
    if b"\x00" in data:
        raise JargonError(path, None, "binary file (contains NUL bytes); expected UTF-8 text, one term a line")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise JargonError(path, line, f"not UTF-8 text (byte {e.start}); save the list as UTF-8") from e


_COMMENT = re.compile(r"(^|\s)#.*$")  # "#" after whitespace starts a comment; "C#" is a term


def _parse_line(raw: str, path: Path, number: int) -> Term | None:
    line = _COMMENT.sub("", raw).strip()
    if not line:
        return None
    if any(ord(c) < 32 and c != "\t" for c in line):
        raise JargonError(path, number, "control characters in the line")
    written, bar, spoken = (part.strip() for part in line.partition("|"))
    if "|" in spoken:
        raise JargonError(path, number, f"more than one '|' in {raw.strip()!r}; use `written | spoken`")
    if not written:
        raise JargonError(path, number, f"nothing before '|' in {raw.strip()!r}")
    if bar and not spoken:
        raise JargonError(path, number, f"nothing after '|' in {raw.strip()!r}; drop the '|' to derive it")
    if len(written) > MAX_TERM_CHARS or len(spoken) > 4 * MAX_TERM_CHARS:
        raise JargonError(path, number, f"term longer than {MAX_TERM_CHARS} characters: {written[:40]!r}...")
    written = " ".join(written.split())
    if spoken:
        return Term(written=written, spoken=" ".join(spoken.split()), given=True)
    return Term(written=written, spoken=spoken_form(written))


# --- spoken forms -------------------------------------------------------------------------------

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()

SYMBOLS = {"@": "at", ".": "dot", "/": "slash", "\\": "backslash", "_": "underscore", "-": "dash",
           ":": "colon", "#": "hash", "+": "plus", "&": "and", "%": "percent", "$": "dollar", "=": "equals",
           "*": "star", "~": "tilde", "?": "question mark", "!": "bang", "^": "caret", ",": "comma",
           "'": "", '"': "", "(": "", ")": "", "[": "", "]": "", "{": "", "}": "", "<": "", ">": ""}

# Numeronyms cannot be derived from their letters.
NUMERONYMS = {"k8s": "kubernetes", "i18n": "internationalization", "l10n": "localization",
              "a11y": "accessibility", "o11y": "observability", "k3s": "k three s"}

# Names whose letters do not tell how they are said; the first form is the usual one.
SAID_AS = {
    "k8s": ("kubernetes", "koober netties", "K eights"),
    "kubectl": ("kube control", "koob control", "kube C T L", "kube cuddle"),
    "nginx": ("engine X",), "postgresql": ("postgres Q L", "post gress Q L", "postgres"), "postgres": ("postgres",),
    "mysql": ("my S Q L", "my sequel"), "sqlite": ("S Q lite", "sequel lite"), "json": ("jason", "J S O N"),
    "yaml": ("yamel",), "oauth": ("oh auth",), "sudo": ("sue do",), "github": ("git hub",), "gitlab": ("git lab",),
    "ubuntu": ("oo boon too",), "debian": ("debbian",), "linux": ("linnux",), "gif": ("gif", "jif"),
    "jpeg": ("jay peg",), "ascii": ("ask ee",), "gui": ("gooey", "G U I"), "sql": ("sequel", "S Q L"),
    "wifi": ("why fi",), "io": ("I O",), "ai": ("A I",), "ui": ("U I",), "ux": ("U X",),
}

# Domain endings said letter by letter ("acme dot I O").
SPELLED_DOMAINS = {"io", "ai", "uk", "us", "de", "eu", "tv", "fm", "ly", "sh", "js"}

# Common tails of tool names, said as words ("kubectl" -> "kube control").
TAILS = {"ctl": "control", "cfg": "config", "conf": "conf", "db": "D B", "sql": "sequel", "js": "J S"}

UNITS = {"ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds", "s": "seconds", "sec": "seconds",
         "min": "minutes", "h": "hours", "hz": "hertz", "khz": "kilohertz", "mhz": "megahertz",
         "ghz": "gigahertz", "kb": "kilobytes", "mb": "megabytes", "gb": "gigabytes", "tb": "terabytes",
         "kbps": "kilobits per second", "mbps": "megabits per second", "gbps": "gigabits per second",
         "k": "K", "x": "times", "db": "decibels", "px": "pixels", "v": "volts", "w": "watts",
         "kw": "kilowatts", "ma": "milliamps", "mm": "millimeters", "cm": "centimeters", "km": "kilometers"}

_TOKEN = re.compile(r"[A-Za-z]+|\d+|\s+|.", re.UNICODE)
_VOWELS = set("aeiouy")


def number_words(digits: str) -> str:
    """'42' -> 'forty two'; leading zeros or more than 6 digits are read digit by digit."""
    if len(digits) > 1 and digits.startswith("0") or len(digits) > 6:
        return " ".join(_ONES[int(d)] for d in digits)
    return _cardinal(int(digits))


def _cardinal(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + _cardinal(rest))
    rest = n % 1000
    return _cardinal(n // 1000) + " thousand" + ("" if rest == 0 else " " + _cardinal(rest))


def spoken_form(written: str) -> str:
    """How a person says a written term: 'ops@acme.io' -> 'ops at acme dot I O', 'WER' -> 'W E R'."""
    return " ".join(" ".join(_word_forms(word)[0] for word in written.split()).split())


MAX_FORMS = 4


def spoken_forms(written: str) -> tuple[str, ...]:
    """The usual way to say `written`, then other ways people say it (each word varied on its own)."""
    per_word = [_forms_and_readings(word) for word in written.split()]
    first = [forms[0] for forms in per_word]
    out = [first]
    for i, forms in enumerate(per_word):
        out += [first[:i] + [other] + first[i + 1 :] for other in forms[1:]]
    said = (" ".join(" ".join(words).split()) for words in out)
    return tuple(dict.fromkeys(said))[:MAX_FORMS]


def _forms_and_readings(word: str) -> tuple[str, ...]:
    forms = _word_forms(word)
    return (*forms, *_other_reading(word, forms[0]))


_VERSION = re.compile(r"[vV](\d+(?:\.\d+)*)")
_CV = re.compile(r"(?:[BCDFGHJKLMNPQRSTVWXYZ][AEIOU]){2,3}|[AEIOU](?:[BCDFGHJKLMNPQRSTVWXYZ][AEIOU]){1,2}[BCDFGHJKLMNPQRSTVWXYZ]?")


def _word_forms(word: str) -> tuple[str, ...]:
    lower = word.lower()
    if lower in SAID_AS:
        return SAID_AS[lower]
    if lower in NUMERONYMS:
        return (NUMERONYMS[lower],)
    if version := _VERSION.fullmatch(word):  # v2.1: "version two point one", also "V two point one"
        number = _spoken_word(version.group(1))
        return (f"version {number}", f"V {number}")
    if word.isupper() and word.isalpha() and 4 <= len(word) <= 6 and _CV.fullmatch(word):
        return (lower, " ".join(word))  # CUDA, NASA: said as a word, sometimes spelled
    spoken = _spoken_word(word)
    if (unit := re.fullmatch(r"(\d+)([A-Za-z]+)", word)) and int(unit.group(1)) % 100 and int(unit.group(1)) > 100:
        return (spoken, spoken.replace(" hundred ", " hundred and ", 1))  # 250ms
    return (spoken,)


_VOWEL_GROUPS = re.compile(r"[aeiou]+")
_OTHER_VOWELS = {"a": "ah", "u": "oo"}


def _other_reading(word: str, said: str) -> tuple[str, ...]:
    """A name known only in writing is read more than one way, its a's and u's most of all: 'Grafana' also as
    'grahfahnah', 'CUDA' as 'coodah'. That reading, spelled for a synthesizer; none for a word said otherwise
    than written (kubectl), a short one or a dictionary word (Kafka, caller)."""
    lower = word.lower()
    if said.lower() != lower or not lower.isalpha() or len(lower) < 4 or len(_VOWEL_GROUPS.findall(lower)) < 2:
        return ()
    reading = _VOWEL_GROUPS.sub(lambda m: _OTHER_VOWELS.get(m.group(), m.group()), lower)
    return (reading,) if reading != lower and not is_dictionary_word(lower) and not _compound(lower) else ()


_PREFIXES = ("un", "re", "de", "dis", "non", "pre", "sub", "auto", "multi", "over", "under", "out")


def _compound(word: str) -> bool:
    """'unmute', 'webhook', 'autoscale': a prefix or word, then a word of four letters or more, read as such."""
    return any((head in _PREFIXES or len(head) >= 3 and is_dictionary_word(head)) and is_dictionary_word(tail)
               for i in range(2, len(word) - 3) for head, tail in [(word[:i], word[i:])])


@lru_cache(maxsize=1)
def _dictionary():
    from spellchecker import SpellChecker

    return SpellChecker(distance=1)


def is_dictionary_word(word: str) -> bool:
    if any(c.isdigit() for c in word) and not word.isdigit():
        return False  # k8s, v1.2, mp3: jargon shapes
    return word.isdigit() or bool(_dictionary().known([word.lower()]))


def _spoken_word(word: str) -> str:
    if word.lower() in NUMERONYMS:
        return NUMERONYMS[word.lower()]
    address = "@" in word or "/" in word or "://" in word  # emails, URLs, paths: say every symbol
    tokens = _TOKEN.findall(word)
    out: list[str] = []
    for i, token in enumerate(tokens):
        prev = tokens[i - 1] if i > 0 else ""
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        out.append(_spoken_token(token, prev, nxt, address, i == 0))
    return " ".join(out)


def _spoken_token(token: str, prev: str, nxt: str, address: bool, first: bool) -> str:
    if token.isdigit():
        return number_words(token)
    if address and prev == "." and not nxt and token.lower() in SPELLED_DOMAINS:
        return " ".join(token.upper())  # acme.io: "dot I O"
    if token.isalpha():
        return _spoken_letters(token, prev)
    if token == "." and prev.isdigit() and nxt.isdigit():
        return "point"  # 2.1, v2.1
    if token == "." and not prev and nxt.isalpha() and not address:
        return "dot"  # .env
    if token == "-" and not address and prev and nxt:
        return ""  # Inter-Asterisk, non-administrator: a hyphen is not said
    if token == "-" and not prev and nxt.isdigit():
        return "minus"
    if token == "#" and len(prev) == 1 and prev.isupper():
        return "sharp"  # C#, F#
    return SYMBOLS.get(token, token)


def _spoken_letters(token: str, prev: str) -> str:
    lower = token.lower()
    if prev.isdigit() and lower in UNITS:
        return UNITS[lower]  # 10ms, 16kHz
    if len(token) == 1:
        return token.upper()  # a letter on its own is said by name
    if token.isupper() and len(token) <= 6:
        return " ".join(token)  # WER, PBX
    if token[:-1].isupper() and token[-1] == "s" and len(token) <= 7:
        return " ".join(token[:-1]) + "s"  # PBXs, APIs
    for tail, said in TAILS.items():
        if lower.endswith(tail) and len(lower) > len(tail) + 2 and token.islower():
            return f"{token[: -len(tail)]} {said}"  # kubectl, mongodb
    if token.islower() and len(token) <= 4 and not _VOWELS & set(lower):
        return " ".join(token.upper())  # npm, ssh
    return _split_caps(token)


_CAPS_PARTS = re.compile(r"[A-Z][a-z]{2,}|[a-z]{3,}|[A-Z]|[a-z]{1,2}")


def _split_caps(token: str) -> str:
    """'PostgreSQL' -> 'Postgre S Q L', 'IPv6' -> 'I P v 6': capitals and short pieces are spelled."""
    if token.islower() or token.istitle():
        return token
    parts = _CAPS_PARTS.findall(token)
    return " ".join(" ".join(p.upper()) if len(p) <= 2 else p for p in parts)
