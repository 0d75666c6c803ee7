"""The primary split holds out whole prompts: one text never lands on both sides."""

from vocabd.split import SENTENCE_MIN_WORDS, split_for_text, text_key


def test_same_text_in_any_spelling_gets_one_side():
    variants = ["Thank you for calling, please hold.", "thank you for calling please hold",
                "THANK YOU FOR CALLING. PLEASE HOLD!", "Thank you for calling - please hold"]
    assert len({text_key(v) for v in variants}) == 1
    assert len({split_for_text(v) for v in variants}) == 1


def test_short_transcripts_always_train():
    for text in ("Activated.", "Goodbye", "Press 1.", "Less than", "five", "A", "Please try again."):
        assert len(text_key(text).split()) < SENTENCE_MIN_WORDS
        assert split_for_text(text) == "train"


def test_sentences_are_held_out_stably_at_about_a_quarter():
    texts = [f"Meeting number {i} starts after the break in room {i % 7}." for i in range(2000)]
    first = [split_for_text(t) for t in texts]
    assert first == [split_for_text(t) for t in texts]
    assert 0.2 < first.count("eval") / len(first) < 0.3


def test_a_drop_never_puts_one_text_on_both_sides():
    texts = ["Your call is important to us, please stay on the line."] * 5 + \
            ["your call is important to us please stay on the line"] * 3 + \
            [f"The next meeting is on day {i} of the month." for i in range(200)]
    sides: dict[str, set[str]] = {}
    for t in texts:
        sides.setdefault(text_key(t), set()).add(split_for_text(t))
    assert all(len(s) == 1 for s in sides.values())
    assert {"eval", "train"} <= set().union(*sides.values())
