"""Sentences saturated with jargon: several terms each, every term in many contexts.

The label keeps each term's written form and numbers as digits; the text for the synthesizer gets
spoken forms and number words. Built from carrier templates of each term's field (`fields.detect_fields`:
a clinician's list gets a clinician's sentences, a software team's list the TEMPLATES below) and from the
user's own transcripts. A sentence's terms all come from one field.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

from vocabd.synthesis.fields import KINDS, FieldGuess, detect_fields
from vocabd.synthesis.frames import FRAMES
from vocabd.jargon import Term, number_words
from vocabd.log import get_logger

log = get_logger(__name__)

# The software field's frames. Slots: {t} a jargon term (each {t} a different one), {n} a number, {name},
# {day}, {time}; the other fields' frames (vocabd/synthesis/frames.py) add typed term slots such as {drug}.
TEMPLATES = (
    # commands
    "Open {t} and check the {t} settings.",
    "Restart {t} before you touch {t}.",
    "Run {t} again, then send the output to {t}.",
    "Please set up {t} and {t} for the new office.",
    "Turn off {t} on port {n} and use {t} instead.",
    "Add {t} to the list next to {t} and {t}.",
    "Disable {t} until {day}, then re-enable {t}.",
    "Update {t} to the latest version and test {t}.",
    "Move the {t} config into {t}.",
    "Try {t} first; if that fails, fall back to {t}.",
    "Remind me to fix {t} and {t} at {time}.",
    "Switch {t} over to {t} tonight.",
    # questions
    "Is {t} still broken after the {t} change?",
    "Why does {t} keep dropping when {t} is on?",
    "Can you explain how {t} talks to {t}?",
    "Did anyone look at the {t} logs from {day}?",
    "How many {t} errors did we get from {t} yesterday?",
    "What happens to {t} if {t} goes down?",
    "Who owns {t} and {t} now that {name} has left?",
    "Should we replace {t} with {t}?",
    "Where is the {t} documentation for {t}?",
    "Do you know if {t} supports {t}?",
    # dictation and notes
    "Note to self: {t} works, {t} does not.",
    "The problem was in {t}, not in {t}.",
    "We moved {n} users from {t} to {t} last week.",
    "I spent the whole morning on {t} and {t}.",
    "{name} says {t} is fine but {t} needs another look.",
    "The {t} migration is done, {t} is next.",
    "{t} and {t} both passed the test on {day}.",
    "According to {name}, {t} is the bottleneck, not {t}.",
    "Let's keep {t} out of the {t} release.",
    "Yesterday {t} failed {n} times in a row.",
    "It turned out {t} was misconfigured in {t}.",
    "The new {t} is much faster than the old {t}.",
    # emails and messages
    "Hi {name}, can you send me the {t} and {t} numbers by {day}?",
    "Dear {name}, the {t} outage is resolved and {t} is back up.",
    "Thanks {name}, I will look into {t} and {t} today.",
    "Hi team, please stop using {t} until {t} is patched.",
    "Quick update: {t} is live, {t} follows on {day}.",
    "Hey {name}, is {t} on the agenda for {day}?",
    "Sorry for the delay, {t} took longer than expected because of {t}.",
    "Forwarding the {t} report; see the part about {t}.",
    # numbers
    "Set the {t} timeout to {n} seconds on {t}.",
    "We have {n} {t} licenses and {n} seats left.",
    "The {t} bill went up by {n} dollars this month.",
    "Call extension {n} about {t} or {t}.",
    "There are {n} open tickets for {t} and {n} for {t}.",
    "Page {n} of the {t} manual covers {t}.",
    "Allocate {n} gigabytes to {t} and {n} to {t}.",
    "The {t} queue has {n} messages waiting for {t}.",
    # one term in an ordinary sentence, the way people mention jargon most of the time
    "I think {t} is the reason the page is slow.",
    "Can you take a quick look at {t} before lunch?",
    "We talked about {t} for most of the meeting.",
    "Honestly, {t} has been solid for months.",
    "Let me know when {t} is back to normal.",
    "The numbers from {t} look a lot better this week.",
    "My plan for today is to clean up {t}.",
    "She asked whether {t} is part of the contract.",
    "Nobody on the team really understands {t} yet.",
    "After the update, {t} started acting up again.",
    "Put a note in the ticket that {t} was the cause.",
    "So the short answer is {t}, and the long answer is a meeting.",
    "Write down {t} so we do not forget it.",
    "It is probably {t} again, it usually is.",
    "I would rather not depend on {t} for this.",
    "We need a second opinion on {t}.",
    "Tell {name} that {t} is ready for review.",
    "From what I can see, {t} is fine.",
    "The customer mentioned {t} twice on the call.",
    "Okay, so first {t}, then coffee.",
    "Give me {n} minutes to check {t}.",
    "That is a question for whoever runs {t}.",
    "Wait, did you say {t}?",
    "I heard {t} is getting replaced next year.",
)

NAMES = ("Alex", "Maria", "Sam", "Priya", "John", "Chen", "Fatima", "Lucas", "Emma", "Omar", "Kate", "David")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "the weekend", "tomorrow", "next week")
TIMES = (("9", "nine"), ("10:30", "ten thirty"), ("noon", "noon"), ("3 pm", "three p m"), ("5", "five"))
STOPWORDS = set(
    "the a an and or but if then than that this these those with from into onto over under about after before "
    "your you our we they them their there here have has had been being were was are is for not please press "
    "when what which while will would could should shall may might must can just only also very more most "
    "some any each every other such into".split()
)

MIN_CARRIER_WORDS, MAX_CARRIER_WORDS = 3, 30
TERM_SLOTS = ("t", *KINDS)
_SLOT = re.compile(r"\{(" + "|".join(("n", "few", "name", "day", "time", *TERM_SLOTS)) + r")\}")
_AN = re.compile(r"(?:^|(?<=\s))([Aa]) $")  # a literal that ends in the article "a"
FIELD_TEMPLATES: dict[str, tuple[str, ...]] = {"software": TEMPLATES, **FRAMES}


@dataclass(frozen=True)
class Sentence:
    text: str  # the label: written forms, digits
    spoken: str  # what the synthesizer says
    terms: tuple[str, ...]  # written forms of the terms in it


def template_split(heldout: bool, field: str = "software") -> tuple[str, ...]:
    """Every fourth template is kept for held-out sentences, so evaluation never sees training carriers."""
    return tuple(t for i, t in enumerate(FIELD_TEMPLATES[field]) if (i % 4 == 3) == heldout)


def generate_sentences(
    terms: Sequence[Term],
    count: int,
    seed: int = 0,
    carriers: Iterable[str] = (),
    heldout: bool = False,
    exclude: Iterable[str] = (),
    fields: dict[str, FieldGuess] | None = None,
) -> list[Sentence]:
    """`count` distinct sentences; terms are used evenly (least used first). Deterministic for a seed.

    `fields` (default: `detect_fields` on the terms and the carriers) says each term's field."""
    if not terms:
        raise ValueError("no jargon terms to build sentences from")
    rng = random.Random(seed)
    usable_carriers = [] if heldout else [c for c in dict.fromkeys(carriers) if _usable_carrier(c)]
    groups = _field_groups(terms, fields if fields is not None else detect_fields(terms, usable_carriers), heldout)
    log.info("sentence_fields", **{g.field: len(g.terms) for g in groups})
    usage: Counter[str] = Counter()
    seen = set(exclude)
    out: list[Sentence] = []
    for _ in range(count * 30):
        if len(out) == count:
            break
        use_carrier = usable_carriers and rng.random() < 0.3
        if use_carrier:
            sentence = _from_carrier(rng.choice(usable_carriers), terms, usage, rng)
        else:
            group = groups[0] if len(groups) == 1 else _group_of_least_used(groups, usage, rng)
            sentence = _from_template(rng.choice(group.templates), group, usage, rng)
        if sentence.text in seen:
            continue
        seen.add(sentence.text)
        usage.update(sentence.terms)
        out.append(sentence)
    if len(out) < count:
        log.warning("sentences_exhausted", wanted=count, made=len(out), terms=len(terms))
    return out


@dataclass(frozen=True)
class _Group:
    """The terms of one field and the frames they can fill."""
    field: str
    terms: tuple[Term, ...]
    kinds: dict[str, tuple[Term, ...]]  # typed slot -> the terms that may fill it
    templates: tuple[str, ...]


def _field_groups(terms: Sequence[Term], fields: dict[str, FieldGuess], heldout: bool) -> list[_Group]:
    by_field: dict[str, list[Term]] = {}
    for term in terms:
        by_field.setdefault(fields[term.written].field if term.written in fields else "everyday", []).append(term)
    groups = []
    for field, members in by_field.items():
        kinds = {kind: tuple(t for t in members if fields.get(t.written) and fields[t.written].kind == kind)
                 for kind in KINDS}
        fits = tuple(t for t in template_split(heldout, field) if _fillable(t, len(members), kinds))
        groups.append(_Group(field, tuple(members), kinds, fits))
    return groups


def _fillable(template: str, members: int, kinds: dict[str, tuple[Term, ...]]) -> bool:
    slots = Counter(_SLOT.findall(template))
    typed = sum(slots[kind] for kind in KINDS)
    if not typed + slots["t"] or typed + slots["t"] > members:
        return False
    return all(slots[kind] <= len(kinds[kind]) for kind in KINDS)


def _group_of_least_used(groups: list[_Group], usage: Counter[str], rng: random.Random) -> _Group:
    lead = min((t for g in groups for t in g.terms), key=lambda t: (usage[t.written], rng.random()))
    return next(g for g in groups if lead in g.terms)


def _pick_terms(terms: Sequence[Term], k: int, usage: Counter[str], rng: random.Random) -> list[Term]:
    ranked = sorted(terms, key=lambda t: (usage[t.written], rng.random()))
    return ranked[:k]


def _from_template(template: str, group: _Group, usage: Counter[str], rng: random.Random) -> Sentence:
    chosen = _chosen_terms(template, group, usage, rng)
    used: list[str] = []
    text_parts: list[str] = []
    spoken_parts: list[str] = []
    position = 0
    for match in _SLOT.finditer(template):
        literal = template[position : match.start()]
        written, said = _fill(match.group(1), chosen, rng)
        if match.group(1) in KINDS and _takes_an(written, said):
            literal = _AN.sub(lambda a: a.group(1) + "n ", literal)
        text_parts.append(literal)
        spoken_parts.append(literal)
        if match.group(1) in TERM_SLOTS:
            used.append(written)
        text_parts.append(written)
        spoken_parts.append(said)
        position = match.end()
    text_parts.append(template[position:])
    spoken_parts.append(template[position:])
    return Sentence(text="".join(text_parts), spoken="".join(spoken_parts), terms=tuple(used))


def _chosen_terms(template: str, group: _Group, usage: Counter[str], rng: random.Random) -> dict[str, Iterator[Term]]:
    """The terms for each kind of slot: typed slots first, then {t} from the terms left, least used first."""
    slots = Counter(_SLOT.findall(template))
    chosen: dict[str, Iterator[Term]] = {}
    taken: set[str] = set()
    for kind in (*KINDS, "t"):
        if slots[kind]:
            pool = group.kinds[kind] if kind in KINDS else group.terms
            picked = _pick_terms([t for t in pool if t.written not in taken], slots[kind], usage, rng)
            taken.update(t.written for t in picked)
            chosen[kind] = iter(picked)
    return chosen


def _fill(slot: str, chosen: dict[str, Iterator[Term]], rng: random.Random) -> tuple[str, str]:
    if slot in TERM_SLOTS:
        term = next(chosen[slot])
        return term.written, _said(term, rng)
    if slot == "n":
        value = str(rng.choice((rng.randint(2, 12), rng.randint(13, 99), rng.randint(100, 999), rng.randint(1000, 9999))))
        return value, number_words(value)
    if slot == "few":
        value = str(rng.choice((rng.randint(2, 12), rng.randint(13, 60))))
        return value, number_words(value)
    if slot == "name":
        name = rng.choice(NAMES)
        return name, name
    if slot == "day":
        day = rng.choice(DAYS)
        return day, day
    return rng.choice(TIMES)


def _takes_an(written: str, said: str) -> bool:
    """'an' before it: said with a vowel first ("an echocardiogram", "an E C G", "an H B A one C")."""
    first = said.split()[0] if said.split() else written
    if len(first) == 1:  # a spelled letter
        return first.upper() in "AEFHILMNORSX"
    return first[:1].lower() in "aeio"


PRIMARY_SHARE = 0.6  # how often a term with other spoken forms is said the usual way


def _said(term: Term, rng: random.Random) -> str:
    """The usual spoken form most of the time, the others (`kube C T L`, `V two point one`) the rest."""
    if not term.alternatives or rng.random() < PRIMARY_SHARE:
        return term.spoken
    return rng.choice(term.alternatives)


def _usable_carrier(text: str) -> bool:
    """Sentence-length transcripts only: a minute-long prompt would make a clip past the 30 s limit."""
    words = text.split()
    return MIN_CARRIER_WORDS <= len(words) <= MAX_CARRIER_WORDS and bool(_candidates(words))


def _candidates(words: list[str]) -> list[int]:
    """Positions of content words in a transcript that a term can stand in for."""
    return [i for i, w in enumerate(words)
            if (core := w.strip(".,;:!?\"'()")).isalpha() and len(core) >= 4 and core.lower() not in STOPWORDS]


def _from_carrier(carrier: str, terms: Sequence[Term], usage: Counter[str], rng: random.Random) -> Sentence:
    """The user's own sentence with one or two content words replaced by terms."""
    words = carrier.split()
    slots = _candidates(words)
    k = min(len(slots), rng.choice((1, 2)), len(terms))
    positions = sorted(rng.sample(slots, k))
    chosen = _pick_terms(terms, k, usage, rng)
    text_words, spoken_words = list(words), list(words)
    for position, term in zip(positions, chosen):
        word = words[position]
        core = word.strip(".,;:!?\"'()")
        head, tail = word[: word.index(core)], word[word.index(core) + len(core):]
        text_words[position] = f"{head}{term.written}{tail}"
        spoken_words[position] = f"{head}{_said(term, rng)}{tail}"
    return Sentence(text=" ".join(text_words), spoken=" ".join(spoken_words), terms=tuple(t.written for t in chosen))
