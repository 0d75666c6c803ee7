"""Jargon lists (parsing, spoken forms) and the sentences built from them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from vocabd.jargon import MAX_BYTES, JargonError, Term, parse_jargon, spoken_form, spoken_forms
from vocabd.synthesis.sentences import TEMPLATES, generate_sentences, template_split


def write(tmp_path: Path, data: bytes | str, name: str = "jargon.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def test_parse_comments_blank_lines_and_spoken_forms(tmp_path):
    path = write(tmp_path, "# telephony\n\nPBX | P B X   # the phone system\n  kubectl  \nC#\nops@acme.io\n")
    assert parse_jargon(path) == [
        Term("PBX", "P B X"), Term("kubectl", "kube control"), Term("C#", "C sharp"),
        Term("ops@acme.io", "ops at acme dot I O"),
    ]


def test_parse_bom_and_windows_line_endings(tmp_path):
    path = write(tmp_path, "\ufeffAsterisk\r\nIAX | I A X\r\n\r\n# end\r\n".encode("utf-8"))
    assert parse_jargon(path) == [Term("Asterisk", "Asterisk"), Term("IAX", "I A X")]


def test_duplicates_keep_the_first_and_spaces_are_collapsed(tmp_path):
    path = write(tmp_path, "caller   ID\nWER | word error rate\nWER\ncaller ID\n")
    assert parse_jargon(path) == [Term("caller ID", "caller I D"), Term("WER", "word error rate")]


@pytest.mark.parametrize("content, problem, line", [
    ("", "empty", None),
    ("# only a comment\n\n   \n", "no terms", None),
    ("PBX\nA | B | C\n", "more than one '|'", 2),
    ("PBX\n | P B X\n", "nothing before '|'", 2),
    ("PBX |\n", "nothing after '|'", 1),
    ("ok\n" + "x" * 150 + "\n", "longer than", 2),
])
def test_bad_lists_name_file_line_and_problem(tmp_path, content, problem, line):
    path = write(tmp_path, content)
    with pytest.raises(JargonError) as err:
        parse_jargon(path)
    assert problem in str(err.value) and str(path) in str(err.value)
    assert err.value.line == line


def test_binary_non_utf8_huge_and_missing_lists_are_refused(tmp_path):
    with pytest.raises(JargonError, match="binary"):
        parse_jargon(write(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image.txt"))
    with pytest.raises(JargonError, match="not UTF-8") as err:
        parse_jargon(write(tmp_path, "PBX\nSIP\ncaf\xe9\n".encode("latin-1"), "latin.txt"))
    assert err.value.line == 3
    with pytest.raises(JargonError, match="is not a term list"):
        parse_jargon(write(tmp_path, b"term\n" * (MAX_BYTES // 5 + 1), "huge.txt"))
    with pytest.raises(JargonError, match="not found"):
        parse_jargon(tmp_path / "missing.txt")


@pytest.mark.parametrize("written, spoken", [
    ("ops@acme.io", "ops at acme dot I O"),
    ("news@acme.com", "news at acme dot com"),
    ("WER", "W E R"),
    ("kubectl", "kube control"),
    ("k8s", "kubernetes"),
    ("p99", "P ninety nine"),
    ("v2.1", "version two point one"),
    ("PBX", "P B X"),
    ("caller ID", "caller I D"),
    ("Inter-Asterisk Exchange", "Inter Asterisk Exchange"),
    ("first_name", "first underscore name"),
    ("/etc/hosts", "slash etc slash hosts"),
    ("10ms", "ten milliseconds"),
    ("16kHz", "sixteen kilohertz"),
    ("50%", "fifty percent"),
    ("007", "zero zero seven"),
    ("1234", "one thousand two hundred thirty four"),
    ("PostgreSQL", "postgres Q L"),
    ("nginx", "engine X"),
    ("CUDA", "cuda"),
    ("DTMF", "D T M F"),
    ("IEEE", "I E E E"),
    ("IPv6", "I P V six"),
    ("npm", "N P M"),
    ("APIs", "A P Is"),
    ("C++", "C plus plus"),
    ("Asterisk", "Asterisk"),
])
def test_spoken_form_table(written, spoken):
    assert spoken_form(written) == spoken


def test_derived_terms_carry_the_other_ways_people_say_them(tmp_path):
    path = tmp_path / "j.txt"
    path.write_text("kubectl\nv2.1\nCUDA\n250ms\nCUDA toolkit\nPBX\nSIP | sip\n")
    terms = {t.written: t for t in parse_jargon(path)}
    assert terms["kubectl"].spoken_forms == ("kube control", "koob control", "kube C T L", "kube cuddle")
    assert terms["v2.1"].alternatives == ("V two point one",)
    assert terms["CUDA"].spoken_forms == ("cuda", "C U D A", "coodah")
    assert terms["CUDA toolkit"].spoken_forms == ("cuda toolkit", "C U D A toolkit", "coodah toolkit")
    assert terms["250ms"].alternatives == ("two hundred and fifty milliseconds",)
    assert terms["PBX"].alternatives == () and terms["SIP"].alternatives == ()  # the list's own form is final


@pytest.mark.parametrize("written, other", [
    ("Grafana", "grahfahnah"), ("Ansible", "ahnsible"), ("Kafka", None), ("caller ID", None), ("Redis", None),
    ("Slack", None), ("Digium", None), ("nginx", None), ("unmute", None), ("webhook", None),
])
def test_a_name_known_only_in_writing_is_also_read_another_way(written, other):
    """Its a's and u's are what readers of an unfamiliar name disagree on; a dictionary word is said one way."""
    assert spoken_forms(written) == (spoken_form(written), *([other] if other else []))


def test_sentences_say_the_other_forms_too():
    term = Term("kubectl", "kube control")
    sentences = generate_sentences([term, Term("Digium", "Digium")], 60, seed=0)
    said = Counter(form for s in sentences for form in term.spoken_forms if form in s.spoken)
    assert said["kube control"] > said["kube C T L"] > 0 and said["kube cuddle"] > 0 and said["koob control"] > 0
    assert all("kubectl" in s.text for s in sentences if "kubectl" in s.terms)


TERMS = [Term("PBX", "P B X"), Term("kubectl", "kube control"), Term("ops@acme.io", "ops at acme dot io"),
         Term("WER", "W E R"), Term("Digium", "Digium"), Term("p99", "P ninety nine")]


def test_sentences_are_distinct_deterministic_and_saturated():
    sentences = generate_sentences(TERMS, 60, seed=3)
    assert len(sentences) == 60 and len({s.text for s in sentences}) == 60
    assert sentences == generate_sentences(TERMS, 60, seed=3)
    assert sentences != generate_sentences(TERMS, 60, seed=4)
    uses = Counter(t for s in sentences for t in s.terms)
    assert set(uses) == {t.written for t in TERMS}
    assert max(uses.values()) - min(uses.values()) <= 2  # every term used about equally
    assert sum(len(s.terms) for s in sentences) / len(sentences) >= 1.7  # several terms per sentence
    by_written = {t.written: t for t in TERMS}
    for s in sentences:
        for written in s.terms:
            assert written in s.text  # the label keeps the written form
            assert any(form in s.spoken for form in by_written[written].spoken_forms)  # said, never written
    assert not any("ops@acme.io" in s.spoken for s in sentences)


def test_each_term_appears_in_many_contexts():
    sentences = generate_sentences(TERMS, 120, seed=0)
    for term in TERMS:
        contexts = {s.text.replace(term.written, "_") for s in sentences if term.written in s.terms}
        assert len(contexts) >= 15


def test_numbers_are_digits_in_the_label_and_words_when_spoken():
    sentences = [s for s in generate_sentences(TERMS, 200, seed=1) if any(c.isdigit() for c in s.text)]
    assert sentences
    assert all(not any(c.isdigit() for c in s.spoken) for s in sentences)


def test_user_transcripts_are_carriers():
    carriers = ["Please leave your message after the tone.", "Your call has been forwarded to voicemail."]
    sentences = generate_sentences(TERMS, 80, seed=0, carriers=carriers)
    from_carriers = [s for s in sentences if s.text.startswith(("Please leave", "Your call"))]
    assert from_carriers and all(s.terms for s in from_carriers)
    long_prompt = " ".join(["Press the pound key to continue."] * 12)  # a minute-long recording's transcript
    sentences = generate_sentences(TERMS, 80, seed=0, carriers=[long_prompt, "Ok."])
    assert all(len(s.text.split()) <= 30 for s in sentences)


def test_heldout_sentences_use_their_own_templates_and_skip_excluded_texts():
    assert set(template_split(True)).isdisjoint(template_split(False))
    assert len(template_split(True)) + len(template_split(False)) == len(TEMPLATES)
    train = generate_sentences(TERMS, 40, seed=0)
    heldout = generate_sentences(TERMS, 20, seed=1, heldout=True, exclude={s.text for s in train})
    assert len(heldout) == 20 and not {s.text for s in heldout} & {s.text for s in train}


def test_a_single_term_still_gives_sentences():
    sentences = generate_sentences([Term("Digium", "Digium")], 5, seed=0)
    assert len(sentences) == 5 and all(s.terms == ("Digium",) for s in sentences)
