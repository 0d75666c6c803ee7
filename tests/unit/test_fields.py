"""Each term's field from the list alone, and sentences whose frames fit that field."""

from __future__ import annotations

import re
from pathlib import Path
from collections import Counter

import pytest

from vocabd.synthesis.fields import detect_fields
from vocabd.synthesis.frames import FRAMES
from vocabd.jargon import parse_jargon_text
from vocabd.synthesis.sentences import generate_sentences, template_split

CLINICAL = "metoprolol\nlisinopril\natorvastatin\ntroponin\nechocardiogram\nNSTEMI\nHbA1c\nfurosemide\n" \
           "atrial fibrillation\nCABG\nejection fraction\napixaban\n"
LEGAL = "estoppel\nhabeas corpus\nvoir dire\nsubpoena\nres judicata\ncertiorari\namicus brief\nDaubert motion\n" \
        "indemnification\ntortious interference\n"
FINANCE = "EBITDA\namortization\nbasis points\nCAPEX\nSOFR\n10-K\naccruals\nWACC\ngoodwill impairment\nfree cash flow\n"
SOFTWARE = "WER\nkubectl\nk8s\nops@acme.io\np99\nGrafana\nCUDA\nnginx\nPostgreSQL\nv2.1\nKafka\n250ms\n"

# Words of a software team or an office: none of them belongs in a clinician's, a lawyer's or a banker's sentence.
SOFTWARE_OR_OFFICE = set("""
    config configuration server servers deploy deployed deployment logs log ticket tickets release version patch
    patched port timeout queue migration bug bugs documentation license licenses seats gigabytes outage meeting
    agenda email install installed restart settings dashboard database api code commit cluster backup laptop
    software app login password slack spreadsheet inbox users upgrade update updated output misconfigured
    bottleneck tonight's extension manual customer team fails fallback supports broken re-enable
    """.split())


def terms_of(text: str):
    return parse_jargon_text(text, Path("jargon.txt"))


def fields_of(text: str) -> Counter[str]:
    return Counter(guess.field for guess in detect_fields(terms_of(text)).values())


@pytest.mark.parametrize("text, field", [(CLINICAL, "clinical"), (LEGAL, "legal"), (FINANCE, "finance"),
                                         (SOFTWARE, "software")])
def test_a_list_of_one_field_is_that_field(text, field):
    assert fields_of(text) == Counter({field: len(terms_of(text))})


def test_a_mixed_list_gives_each_term_its_own_field():
    guesses = detect_fields(terms_of("metoprolol\nEBITDA\nkubectl\nestoppel\ntroponin\nCRISPR\n"))
    assert {w: g.field for w, g in guesses.items()} == {
        "metoprolol": "clinical", "EBITDA": "finance", "kubectl": "software", "estoppel": "legal",
        "troponin": "clinical", "CRISPR": "science"}


def test_a_term_with_no_evidence_takes_its_neighbours_and_never_software_by_default():
    guesses = detect_fields(terms_of("bisoprolol\nZebra Clinic protocol\nwarfarin\n"))
    assert guesses["Zebra Clinic protocol"].field == "clinical"
    nothing_known = detect_fields(terms_of("Siobhan\nTāwhiri\nQuinoa salad\n"))
    assert {g.field for g in nothing_known.values()} == {"everyday"}
    from_transcripts = detect_fields(terms_of("Siobhan\n"), ["The patient needs a lower dose of insulin."])
    assert from_transcripts["Siobhan"].field == "clinical"


def test_clinical_terms_get_a_kind_that_frames_respect():
    guesses = detect_fields(terms_of(CLINICAL))
    assert guesses["metoprolol"].kind == "drug" and guesses["apixaban"].kind == "drug"
    assert guesses["troponin"].kind == "test" and guesses["echocardiogram"].kind == "test"
    assert guesses["NSTEMI"].kind == "condition" and guesses["CABG"].kind == "procedure"
    legal = detect_fields(terms_of(LEGAL))
    assert legal["amicus brief"].kind == "filing" and legal["estoppel"].kind == "doctrine"
    drugs = {w for w, g in guesses.items() if g.kind == "drug"}
    sentences = generate_sentences(terms_of(CLINICAL), 300, seed=0)
    for sentence in sentences:
        if sentence.text.startswith("Start "):
            assert sentence.text.split()[1] in drugs
    assert any("an echocardiogram" in s.text for s in sentences)
    assert not any(re.search(r"\ba (echocardiogram|HbA1c)", s.text) for s in sentences)
    assert all("an H B A one C" in s.spoken for s in sentences if "an HbA1c" in s.text)


def software_share(text: str, count: int = 500) -> float:
    sentences = generate_sentences(terms_of(text), count, seed=0)
    assert len(sentences) >= 200  # a short list runs out of distinct sentences sooner
    words = lambda s: {w.lower() for w in re.findall(r"[A-Za-z'-]+", s)}  # noqa: E731
    return sum(bool(words(s.text) & SOFTWARE_OR_OFFICE) for s in sentences) / len(sentences)


@pytest.mark.parametrize("text", [CLINICAL, LEGAL, FINANCE, "CRISPR\nplasmid\nqPCR\nWestern blot\nHPLC\n",
                                  "Siobhan\nTāwhiri\nQuinoa salad\n"])
def test_few_sentences_of_other_fields_carry_software_or_office_words(text):
    assert software_share(text) <= 0.05


def test_a_software_list_still_gets_software_sentences():
    assert software_share(SOFTWARE) > 0.3


def test_a_mixed_list_keeps_each_sentence_in_one_field():
    mixed = CLINICAL + LEGAL
    fields = {w: g.field for w, g in detect_fields(terms_of(mixed)).items()}
    sentences = generate_sentences(terms_of(mixed), 300, seed=1)
    assert all(len({fields[t] for t in s.terms}) == 1 for s in sentences)
    assert {fields[t] for s in sentences for t in s.terms} == {"clinical", "legal"}
    uses = Counter(t for s in sentences for t in s.terms)
    assert max(uses.values()) - min(uses.values()) <= 3  # both fields' terms used about equally


@pytest.mark.parametrize("field", sorted(FRAMES))
def test_every_field_has_several_frames_for_one_term_on_both_sides_of_the_split(field):
    for heldout in (False, True):
        singles = [t for t in template_split(heldout, field) if t.count("{") - t.count("{few}") - t.count("{name}")
                   - t.count("{day}") - t.count("{time}") == 1]
        assert len(singles) >= 5, (field, heldout)


def test_a_single_term_of_a_field_gives_sentences_with_the_written_form():
    terms = terms_of("Rule 12(b)(6)\nestoppel\n")
    sentences = generate_sentences(terms, 40, seed=0)
    ruled = [s for s in sentences if "Rule 12(b)(6)" in s.terms]
    assert ruled and all("Rule 12(b)(6)" in s.text and "twelve" in s.spoken for s in ruled)
