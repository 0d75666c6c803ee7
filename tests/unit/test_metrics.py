import pytest

from vocabd.scoring.metrics import count_term, normalize, overall_recall, term_stats, wer


def test_wer_counts_substitutions_deletions_insertions():
    assert wer(["a b c d"], ["a x c d"]) == pytest.approx(0.25)
    assert wer(["a b c d"], ["a c d"]) == pytest.approx(0.25)
    assert wer(["a b c d"], ["a b c d e f"]) == pytest.approx(0.5)
    assert wer(["a b", "c d e f"], ["a b", ""]) == pytest.approx(4 / 6)  # corpus-level, not mean of rates


def test_empty_reference_counts_insertions():
    assert wer([""], [""]) == 0.0
    assert wer(["", "a"], ["x y", "a"]) == pytest.approx(2.0)


def test_raw_vs_normalized():
    ref, hyp = "Press 1, then the pound key.", "press one then the pound key"
    assert wer([ref], [hyp]) == pytest.approx(3 / 6)  # Press, "1,", "key."
    assert wer([ref], [hyp], normalized=True) == 0.0


@pytest.mark.parametrize("text, expected", [
    ("Twenty-one", "21"),
    ("one hundred and five", "105"),
    ("press one two three", "press 1 2 3"),
    ("two thousand twenty four", "2024"),
    ("in fourteen sixty-two", "in 1462"),
    ("nineteen eighty four", "1984"),
    ("twenty twenty", "2020"),
    ("three twenty", "3 20"),
    ("1,000 users", "1000 users"),
    ("Don't \"quote\" me!", "don't quote me"),
    ("For the twentieth time", "for the 20th time"),
    ("the twenty-first of May", "the 21st of may"),
    ("one hundred and first", "101st"),
    ("the eleventh, twelfth and third", "the 11th 12th and 3rd"),
    ("the 42nd street", "the 42nd street"),
])
def test_normalize(text, expected):
    assert normalize(text) == expected


def test_term_match_is_exact_and_whole_word():
    assert count_term("WER", "the WER and the wer") == 1
    assert count_term("WER", "ANSWER WERS") == 0
    assert count_term("ops@acme.io", "mail ops@acme.io.") == 1
    assert count_term("@", "a@b and @c") == 2
    assert count_term("k8s", "k8s, k8ss") == 1


def test_a_lower_case_term_counts_capitalized_only_where_a_sentence_starts():
    assert count_term("res judicata", "Res judicata applies. It is res judicata.") == 2
    assert count_term("res judicata", 'He said: "Res judicata." Then (Res judicata) again') == 1
    assert count_term("res judicata", "the Res judicata rule") == 0
    assert count_term("kubectl", "Kubectls are. Kubectl get pods") == 1
    assert count_term("WER", "Wer. WER") == 1


def test_term_recall_and_false_alarms():
    refs = ["mail ops@acme.io about WER", "the WER is low", "run kubectl get pods"]
    hyps = ["mail ops at acme about WER WER", "the were is low", "run kubectl get pods kubectl"]
    stats = term_stats(refs, hyps, ["WER", "ops@acme.io", "kubectl", "PBX"])
    assert (stats["WER"].expected, stats["WER"].hits, stats["WER"].false_alarms) == (2, 1, 1)
    assert stats["ops@acme.io"].recall == 0.0
    assert (stats["kubectl"].recall, stats["kubectl"].false_alarms) == (1.0, 1)
    assert stats["PBX"].recall is None
    assert overall_recall(stats) == pytest.approx(2 / 4)
