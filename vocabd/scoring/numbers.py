"""Number words to digits, so that "press one" and "press 1" compare equal after normalizing, and "the
twenty first" and "the 21st" too."""

from __future__ import annotations

UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if w != "_"}
SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_IRREGULAR = {"first": "one", "second": "two", "third": "three", "fifth": "five", "eighth": "eight",
              "ninth": "nine", "twelfth": "twelve"}
ORDINALS = _IRREGULAR | {  # ordinal word -> the cardinal word it ends a number as
    (w[:-1] + "ieth" if w.endswith("y") else w + "th"): w
    for w in [*UNITS, *TENS, *SCALES] if w not in _IRREGULAR.values() and w != "zero"}


def words_to_digits(words: list[str]) -> list[str]:
    """Replace each run of cardinal number words by its value; a unit after a unit starts a new number."""
    out: list[str] = []
    number: _Number | None = None
    for i, word in enumerate(words):
        if word == "and" and number is not None and number.last == "scale" and _is_number(words[i + 1 : i + 2]):
            continue  # "one hundred and five"
        if word in ORDINALS:
            cardinal = ORDINALS[word]
            if number is None or not number.accepts(cardinal):
                if number is not None:
                    out.append(number.digits())
                number = _Number()
            number.add(cardinal)
            out.append(number.ordinal())
            number = None
        elif word in UNITS or word in TENS or word in SCALES:
            if number is None or not number.accepts(word):
                if number is not None:
                    out.append(number.digits())
                number = _Number()
            number.add(word)
        else:
            if number is not None:
                out.append(number.digits())
                number = None
            out.append(word)
    if number is not None:
        out.append(number.digits())
    return out


def _is_number(words: list[str]) -> bool:
    word = ORDINALS.get(words[0], words[0]) if words else ""
    return word in UNITS or word in TENS


class _Number:
    def __init__(self) -> None:
        self.total = 0  # completed thousands/millions
        self.current = 0  # the part below the last scale word
        self.last = ""  # "unit", "teen", "tens", "scale"

    def accepts(self, word: str) -> bool:
        if word in SCALES:
            return self.last != "scale" or SCALES[word] > 100
        if word in TENS:
            return self.last in ("scale",) or (self.last == "" and self.current == 0) or self.reads_as_year()
        value = UNITS[word]
        if self.last == "tens":
            return 0 < value < 10
        return self.last == "scale" and value > 0

    def add(self, word: str) -> None:
        if word in SCALES:
            scale = SCALES[word]
            if scale == 100:
                self.current = max(self.current, 1) * 100
            else:
                self.total += max(self.current, 1) * scale
                self.current = 0
            self.last = "scale"
        elif word in TENS:
            if self.reads_as_year():
                self.current *= 100
            self.current += TENS[word]
            self.last = "tens"
        else:
            self.current += UNITS[word]
            self.last = "teen" if UNITS[word] >= 10 else "unit"

    def reads_as_year(self) -> bool:
        """ "fourteen sixty two", "nineteen eighty four": a two-digit number followed by tens."""
        return self.total == 0 and 10 <= self.current <= 99 and self.last in ("teen", "tens", "unit")

    def digits(self) -> str:
        return str(self.total + self.current)

    def ordinal(self) -> str:
        value = self.total + self.current
        suffix = "th" if value % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(value % 10, "th")
        return f"{value}{suffix}"
