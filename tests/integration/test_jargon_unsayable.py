"""Jargon terms that cannot be said (no letter or digit in what would be spoken): left out with their reason,
the rest of the list kept. The real parser and the real inbox rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from vocabd.inbox.drops import handle, inbox_entries
from vocabd.jargon import JargonError, parse_jargon, parse_jargon_text

LIST = "kubectl\n[\n]]]\n(( ))\nPBX\n'\"' | ()\n"


def test_the_parser_leaves_out_terms_that_cannot_be_said(tmp_path):
    left_out: list = []
    terms = parse_jargon_text(LIST, tmp_path / "terms.txt", left_out=left_out)
    assert [t.written for t in terms] == ["kubectl", "PBX"]
    assert [(item.line, item.written) for item in left_out] == [(2, "["), (3, "]]]"), (4, "(( ))"), (6, "'\"'")]
    assert all("cannot be said" in item.reason for item in left_out)


def test_a_list_of_only_unsayable_terms_is_refused(tmp_path):
    with pytest.raises(JargonError, match="cannot be said"):
        parse_jargon_text("[\n]]]\n", tmp_path / "terms.txt")


def test_the_inbox_keeps_the_rest_and_sets_the_unsayable_terms_aside_with_their_reason(ws):
    (ws.inbox / "terms.txt").write_text(LIST, encoding="utf-8")
    [outcome] = handle(ws, inbox_entries(ws))
    assert outcome.status == "done" and "4 left out" in outcome.message, outcome.message
    assert [t.written for t in parse_jargon(ws.data / "jargon.txt")] == ["kubectl", "PBX"]
    rejected = ws.inbox / "rejected"
    assert (rejected / "terms.left-out.txt").read_text(encoding="utf-8").splitlines() == ["[", "]]]", "(( ))",
                                                                                           "'\"' | ()"]
    reason = (rejected / "terms.left-out.txt.reason.txt").read_text(encoding="utf-8")
    assert reason.startswith("terms.txt: ") and "line 2: '[' cannot be said" in reason, reason


def test_an_unsayable_list_is_rejected_whole(ws):
    (ws.inbox / "terms.txt").write_text("[\n]]]\n", encoding="utf-8")
    [outcome] = handle(ws, inbox_entries(ws))
    assert outcome.status == "rejected" and "cannot be said" in outcome.message
    assert not (ws.data / "jargon.txt").exists()


def test_a_workspace_list_holding_one_is_read_without_it(ws):
    path: Path = ws.data / "jargon.txt"
    path.write_text("kubectl\n[\n", encoding="utf-8")
    assert [t.written for t in parse_jargon(path)] == ["kubectl"]
