"""Sentences as a reader sees them (cairn.sentences)."""

from cairn.sentences import is_question, text_units

FAQ = """NORTHWIND - FREQUENTLY ASKED QUESTIONS

Q: What happens to my leave if I am sick while on holiday?
A: If you are ill for two or more days of a holiday and can provide a doctor's
note, those days are recorded as sick leave and your annual leave is
credited back.
"""


def test_hard_wrapped_lines_are_joined_into_whole_sentences() -> None:
    """A sentence wrapped over three lines is one unit; no line is taken as a sentence."""
    units = text_units(FAQ)
    answer = [u for u in units if u.text.startswith("A:")]
    assert [u.text for u in answer] == [
        "A: If you are ill for two or more days of a holiday and can provide a doctor's note, those days are "
        "recorded as sick leave and your annual leave is credited back."
    ]
    assert (answer[0].line_start, answer[0].line_end) == (3, 5)
    assert FAQ[answer[0].start : answer[0].end].split() == answer[0].text.split()


def test_headings_and_question_lines_are_units_of_their_own() -> None:
    """The all-caps title is a heading and the "Q:" line a question, each apart from the answer."""
    kinds = [(u.kind, u.text[:12]) for u in text_units(FAQ)]
    assert kinds[:2] == [("heading", "NORTHWIND - "), ("question", "Q: What happ")]


def test_abbreviations_and_numbers_do_not_end_a_sentence() -> None:
    """Abbreviations ("e.g.", "i.e.") and version numbers stay inside their sentence."""
    text = "Use a recent release, e.g. version 3.19.0 or later. Older ones, i.e. 3.18, leak memory."
    assert [u.text for u in text_units(text)] == [
        "Use a recent release, e.g. version 3.19.0 or later.",
        "Older ones, i.e. 3.18, leak memory.",
    ]


def test_list_items_table_rows_and_code_stay_whole() -> None:
    """Each list item, table row and code block is one unit, even when a list item wraps."""
    text = (
        "To install it:\n\n"
        "- download the archive from the release page and\n  unpack it anywhere\n"
        "- run the installer\n\n"
        "| size | speed |\n| 1 GB | fast |\n\n"
        "```\nmake\nmake install\n```\n"
    )
    units = [(u.kind, u.text) for u in text_units(text)]
    assert units == [
        ("sentence", "To install it:"),
        ("list_item", "- download the archive from the release page and unpack it anywhere"),
        ("list_item", "- run the installer"),
        ("table_row", "| size | speed |"),
        ("table_row", "| 1 GB | fast |"),
        ("code", "```\nmake\nmake install\n```"),
    ]


def test_numbered_questions_run_to_their_question_mark_or_colon() -> None:
    """A numbered FAQ question ("2.1.") is a question up to its '?' or ':'; an indented example after
    it is code, and the answer's sentences are statements."""
    text = (
        "2.1. When building it, 'make' dies partway with an assertion\nfailure, something like this:\n\n"
        "    % make: expand.c:489: Assertion failed.\n\n"
        "It's probably a bug in 'make'. Try upgrading to a more recent version.\n"
    )
    kinds = [u.kind for u in text_units(text)]
    assert kinds == ["question", "question", "code", "sentence", "sentence"]


def test_is_question() -> None:
    """Question marks and question labels make a question; answer labels and statements do not."""
    assert is_question("How do I round a number?")
    assert is_question("Q: Can I buy leave")
    assert not is_question("A: No.")
    assert not is_question("3.19.0 was released in April.")
