"""The user filter language: parsing, the JSON form, validation, limits and compilation to Milvus expressions.

The engine's view of the compiled expressions is checked in tests/integration/test_filters_engine.py.
"""

from __future__ import annotations

import functools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cairn.errors import InvalidRequest
from cairn.filters import All, Any, Condition, Filter, Not, compile_filter, filter_from_json, parse_filter

TEXT_FIELDS = ["source", "mime", "doc_id", "metadata.status", "metadata._Key9"]
NUMBER_FIELDS = ["version", "created_at"]
SAFE_TEXT = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=12)
INT64 = st.integers(-(2**63), 2**63 - 1)


def _leaf(contains: bool) -> st.SearchStrategy[Condition]:
    text_value = st.sampled_from(['"', "\\", "%", "_", ") or (", "é"]) | SAFE_TEXT
    leaves = [
        st.builds(Condition, st.sampled_from(TEXT_FIELDS), st.sampled_from(["=", "!="]), text_value),
        st.builds(Condition, st.sampled_from(TEXT_FIELDS), st.just("in"), st.lists(text_value, min_size=1).map(tuple)),
        st.builds(Condition, st.sampled_from(NUMBER_FIELDS), st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), INT64),
        st.builds(Condition, st.sampled_from(NUMBER_FIELDS), st.just("in"), st.lists(INT64, min_size=1).map(tuple)),
    ]
    if contains:
        leaves.append(st.builds(Condition, st.sampled_from(TEXT_FIELDS), st.just("~"), text_value.filter(bool)))
    return st.one_of(leaves)


@functools.cache
def filters(negated: bool = False, depth: int = 3) -> st.SearchStrategy[Filter]:
    """Valid filter trees: never a ``~`` under an odd number of ``not`` (the engine cannot negate it)."""
    leaf = _leaf(contains=not negated)
    if depth == 0:
        return leaf
    sub = filters(negated, depth - 1)
    return st.one_of(
        leaf,
        st.lists(sub, min_size=2, max_size=3).map(lambda items: All(tuple(items))),
        st.lists(sub, min_size=2, max_size=3).map(lambda items: Any(tuple(items))),
        filters(not negated, depth - 1).map(Not),
    )


def render(f: Filter, ensure_ascii: bool = False) -> str:
    """``f`` written in the text grammar, every group in parentheses."""
    if isinstance(f, Condition):
        values = f.value if isinstance(f.value, tuple) else (f.value,)
        text = ", ".join(json.dumps(v, ensure_ascii=ensure_ascii) for v in values)
        return f"{f.field} {f.op} [{text}]" if f.op == "in" else f"{f.field} {f.op} {text}"
    if isinstance(f, Not):
        return f"not {render(f.item, ensure_ascii)}"
    joiner = " and " if isinstance(f, All) else " or "
    return "(" + joiner.join(render(item, ensure_ascii) for item in f.items) + ")"


def scan_milvus(expr: str) -> list[str]:
    """The string literals of ``expr`` decoded as Milvus does (only \\\\ and \\" are escapes).

    Asserts that the expression is one parenthesised group: outside literals, parentheses balance and
    never close the outer group before the last character.
    """
    assert expr.startswith("(")
    literals: list[str] = []
    depth, i = 0, 0
    while i < len(expr):
        ch = expr[i]
        if ch == '"':
            decoded, i = [], i + 1
            while expr[i] != '"':
                if expr[i] == "\\":
                    assert expr[i + 1] in '\\"', f"unexpected escape in {expr!r}"
                    i += 1
                decoded.append(expr[i])
                i += 1
            literals.append("".join(decoded))
        elif ch in "()":
            depth += 1 if ch == "(" else -1
            assert depth > 0 or i == len(expr) - 1, f"group closes early in {expr!r}"
        else:
            assert ch in "abcdefghijklmnopqrstuvwxyz_[]<>=!, -0123456789", f"stray {ch!r} in {expr!r}"
        i += 1
    assert depth == 0
    return literals


# -- the text form ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('mime = "application/pdf" and version >= 2', '((mime == "application/pdf") and (version >= 2))'),
        ('source ~ "handbook"', '(source like "%handbook%")'),
        ('metadata.status in ["open", "pending"]', '(metadata["status"] in ["open", "pending"])'),
        ('not (mime = "text/html")', '(mime != "text/html")'),
        ("created_at > 1700000000", "(created_at > 1700000000)"),
        ("version == -3", "(version == -3)"),
        ('doc_id = "abc" or doc_id = "def"', '((doc_id == "abc") or (doc_id == "def"))'),
        ('source = "say \\"hi\\" \\\\ bye"', r'(source == "say \"hi\" \\ bye")'),
        ('source = "\\u65e5\\u672c"', '(source == "日本")'),
        ('source ~ "50%_off\\\\"', r'(source like "%50\\%\\_off\\\\%")'),
    ],
)
def test_examples_compile_to_the_expected_expression(text: str, expected: str) -> None:
    """The documented examples compile to exactly these Milvus expressions."""
    assert compile_filter(parse_filter(text)) == expected


def test_keywords_are_case_insensitive_and_fields_are_not() -> None:
    """AND/Or/NOT/In are keywords in any case; field names must be written in lower case."""
    assert parse_filter('NOT version = 1 AnD mime IN ["a"] Or source ~ "x"') == parse_filter(
        'not version = 1 and mime in ["a"] or source ~ "x"'
    )
    with pytest.raises(InvalidRequest, match="unknown filter field 'Version'"):
        parse_filter("Version = 1")


def test_and_binds_tighter_than_or_and_not_tighter_than_and() -> None:
    """``not a and b or c`` reads as ``((not a) and b) or c``."""
    a, b, c = (Condition("version", "=", n) for n in (1, 2, 3))
    assert parse_filter("not version = 1 and version = 2 or version = 3") == Any((All((Not(a), b)), c))
    assert parse_filter("version = 1 or version = 2 and version = 3") == Any((a, All((b, c))))


def test_not_is_pushed_down_to_the_conditions() -> None:
    """Negation becomes De Morgan, inverted comparisons and ``not in``; the output never says ``not (``."""
    compiled = compile_filter(
        parse_filter('not (version < 2 and (metadata.k != "x" or doc_id in ["a"]) or not created_at >= 5)')
    )
    assert compiled == (
        '(((version >= 2) or ((metadata["k"] == "x") and (doc_id not in ["a"]))) and (created_at >= 5))'
    )
    assert compile_filter(parse_filter("not not version > 1")) == "(version > 1)"
    assert compile_filter(parse_filter("not version <= 1")) == "(version > 1)"


def test_not_in_is_written_after_the_field() -> None:
    """``field not in [...]`` is ``not (field in [...])``; ``not`` before any other operator is an error."""
    assert parse_filter('mime NOT IN ["a", "b"]') == Not(Condition("mime", "in", ("a", "b")))
    assert compile_filter(parse_filter('mime not in ["a"]')) == '(mime not in ["a"])'
    with pytest.raises(InvalidRequest, match="character 10: expected 'in' after 'not', found '='"):
        parse_filter('mime not = "a"')


def test_a_negated_contains_is_refused_because_the_engine_cannot_evaluate_it() -> None:
    """Milvus Lite has neither ``not (...)`` nor ``not like``; an odd number of nots over ``~`` is refused."""
    with pytest.raises(InvalidRequest, match="cannot be negated"):
        parse_filter('not (version = 1 or source ~ "x")')
    with pytest.raises(InvalidRequest, match="cannot be negated"):
        compile_filter(Not(Condition("mime", "~", "pdf")))
    assert compile_filter(parse_filter('not not source ~ "x"')) == '(source like "%x%")'


@pytest.mark.parametrize("field", ["tenant", "allowed"])
def test_security_fields_are_refused_as_set_by_the_server(field: str) -> None:
    """``tenant`` and ``allowed`` come from the caller's identity, never from a user's filter."""
    with pytest.raises(InvalidRequest, match="set by the server"):
        parse_filter(f'{field} = "B"')
    with pytest.raises(InvalidRequest, match="set by the server"):
        filter_from_json({"field": field, "op": "in", "value": ["B"]})


@pytest.mark.parametrize("field", ["text", "location", "chunk_id", "metadata", "dense", "x", "Tenant"])
def test_unknown_fields_are_refused_with_the_allowed_list(field: str) -> None:
    """Anything outside the allowlist is refused, and the message lists what is allowed."""
    with pytest.raises(InvalidRequest, match=r"allowed fields are source, mime, doc_id, version, created_at"):
        parse_filter(f'{field} = "a"')


@pytest.mark.parametrize("key", ["", "1st", "a-b", "a" * 65, "é", "a.b", 'a"]'])
def test_metadata_keys_must_be_identifiers(key: str) -> None:
    """A metadata key is 1-64 ASCII identifier characters, so it is safe inside ``metadata["key"]``."""
    with pytest.raises(InvalidRequest, match="metadata key"):
        filter_from_json({"field": f"metadata.{key}", "op": "=", "value": "x"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('version = "2"', "version compares with integers, not str"),
        ("source = 2", "source compares with strings, not int"),
        ('source < "b"', "< needs a numeric field"),
        ('metadata.k >= "b"', ">= needs a numeric field"),
        ("created_at ~ 17", "needs a text field"),
        ('source ~ ""', "non-empty string"),
        ("version = 9223372036854775808", "64-bit integer range"),
        ('mime in ["a", 1]', "mime compares with strings, not int"),
    ],
)
def test_values_are_type_checked_against_the_field(text: str, message: str) -> None:
    """Operators and values must suit the field; the error says which rule was broken, and where."""
    with pytest.raises(InvalidRequest, match=message) as info:
        parse_filter(text)
    assert "at character 1" in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version > 1.5", "character 11: numbers are integers"),
        ("version > 1e3", "character 11: numbers are integers"),
        ('source = "abc', "character 10: unterminated string"),
        ("source = 'abc'", 'character 10: unexpected character "\'"'),
        ('source = "a" or', "character 16: expected a field name, 'not' or '(', found the end"),
        ('(source = "a"', "character 14: expected ')', 'and' or 'or'"),
        ('source = "a")', "character 13: expected 'and', 'or' or the end of the filter, found ')'"),
        ('source "a"', "character 8: expected an operator"),
        ("version in 1", "character 12: expected '[' after 'in'"),
        ("version in [1 2]", "character 15: expected ',' or ']'"),
        ("version in []", "character 13: expected a \"double-quoted string\" or an integer, found ']'"),
        ('source = "a\\qb"', "invalid string: invalid \\escape"),
        ('source = "a\nb"', "invalid string: invalid control character"),
        ('source = "a" ; drop', "character 14: unexpected character ';'"),
        ('source = "a" && version = 1', "character 14: unexpected character '&'"),
        ("version\u00a0= 1", "unexpected character"),
        ("version = \uff11", "unexpected character"),
    ],
)
def test_syntax_errors_name_the_position_and_what_was_expected(text: str, message: str) -> None:
    """Malformed text is refused with the 1-based character position and the tokens that would fit."""
    with pytest.raises(InvalidRequest, match="filter syntax error") as info:
        parse_filter(text)
    assert message in str(info.value)


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_an_empty_filter_is_refused(text: str) -> None:
    """An empty filter is an error: callers leave the filter out to search everything."""
    with pytest.raises(InvalidRequest, match="empty"):
        parse_filter(text)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: parse_filter("version = 1 and " * 150 + "version = 1"), "limit is 2000"),
        (lambda: parse_filter(" or ".join(["version = 1"] * 33)), "more than 32 conditions"),
        (lambda: parse_filter("(" * 17 + "version = 1" + ")" * 17), "more than 16 levels"),
        (lambda: parse_filter("not " * 17 + "version = 1"), "more than 16 levels"),
        (lambda: parse_filter("(" * 1000), "more than 16 levels"),
        (lambda: parse_filter(f"version in [{', '.join(['1'] * 101)}]"), "1 to 100 values"),
        (lambda: filter_from_json({"field": "source", "op": "=", "value": "x" * 1025}), "limit is 1024"),
        (lambda: filter_from_json([{"field": "source", "op": "in", "value": ["x" * 1000] * 17}]), "16384"),
        (lambda: filter_from_json(_nested_not(17)), "more than 16 levels"),
        (lambda: filter_from_json([{"field": "version", "op": "=", "value": 1}] * 33), "1 to 32 filters"),
        (lambda: compile_filter(All(tuple(Condition("version", "=", 1) for _ in range(33)))), "more than 32"),
    ],
)
def test_size_limits_are_enforced(make: object, message: str) -> None:
    """Length, condition count, nesting depth, list size and value size are bounded, in every form."""
    with pytest.raises(InvalidRequest, match=message):
        make()  # type: ignore[operator]


def _nested_not(levels: int) -> object:
    obj: object = {"field": "version", "op": "=", "value": 1}
    for _ in range(levels):
        obj = {"not": obj}
    return obj


@pytest.mark.parametrize("char", ["\x00", "\n", "\r", "\t", "\x1b", "\x7f", "\x85", "\ud800"])
def test_control_characters_and_lone_surrogates_are_refused(char: str) -> None:
    """The engine cannot take control characters in a literal (and surrogates are not UTF-8)."""
    with pytest.raises(InvalidRequest, match=f"U\\+{ord(char):04X}"):
        parse_filter(f"source = {json.dumps('a' + char)}")
    with pytest.raises(InvalidRequest, match=f"U\\+{ord(char):04X}"):
        filter_from_json({"field": "metadata.k", "op": "~", "value": char})


# -- the JSON form ---------------------------------------------------------------------------
def test_the_json_form_builds_the_same_tree_as_the_text_form() -> None:
    """A list is ANDed; all/any/not nest; ``==`` is stored as ``=``; ``in`` takes a JSON list."""
    obj = [
        {"field": "mime", "op": "==", "value": "application/pdf"},
        {
            "any": [
                {"field": "version", "op": ">=", "value": 2},
                {"not": {"field": "metadata.s", "op": "in", "value": ["a"]}},
            ]
        },
    ]
    text = 'mime = "application/pdf" and (version >= 2 or not metadata.s in ["a"])'
    assert filter_from_json(obj) == parse_filter(text)
    assert filter_from_json({"all": obj}) == parse_filter(text)
    assert filter_from_json([obj[0]]) == Condition("mime", "=", "application/pdf")


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([], "filter: give 1 to 32 filters"),
        ({"all": []}, "filter.all: give 1 to 32 filters"),
        ({"any": {"field": "version"}}, 'filter: expected {"field", "op", "value"}'),
        ({"field": "version", "op": "="}, "not an object with keys ['field', 'op']"),
        ({"field": "version", "op": "=", "value": 1, "extra": 1}, "filter: expected"),
        ("version = 1", "filter: expected"),
        ({"all": [{"field": "version", "op": "=", "value": True}]}, "filter.all[0]: version compares with integers"),
        ([{"not": {"field": "version", "op": "=", "value": 1.5}}], "filter[0].not: version compares with integers"),
        ({"field": "version", "op": "like", "value": 1}, "unknown operator 'like'"),
        ({"field": "version", "op": ["="], "value": 1}, "unknown operator"),
        ({"field": ["source"], "op": "=", "value": "x"}, "field must be a string, not list"),
        ({"field": "source", "op": "=", "value": ["x"]}, "source compares with strings, not tuple"),
        ({"field": "source", "op": "in", "value": "x"}, "needs a list of 1 to 100 values"),
        ({"field": "source", "op": "in", "value": [["x"]]}, "source compares with strings, not list"),
        ({"field": "source", "op": "=", "value": None}, "not NoneType"),
    ],
)
def test_malformed_json_is_refused_with_its_path(obj: object, message: str) -> None:
    """Each error names where in the JSON document it is, and what would have been accepted."""
    with pytest.raises(InvalidRequest) as info:
        filter_from_json(obj)
    assert message in str(info.value)


def test_compile_refuses_anything_that_is_not_a_filter() -> None:
    """Only the four node types compile; strings (raw engine expressions) are refused."""
    with pytest.raises(InvalidRequest, match="not a filter: str"):
        compile_filter('tenant == "B"')  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="not a filter: str"):
        compile_filter(All(('tenant == "B"',)))  # type: ignore[arg-type]


# -- properties ------------------------------------------------------------------------------
@given(filters(), st.booleans())
def test_rendered_filters_parse_back_to_the_same_tree(f: Filter, ensure_ascii: bool) -> None:
    """Any valid tree, written in the text grammar (ASCII-escaped or not), parses back to itself."""
    text = render(f, ensure_ascii)
    if len(text) <= 2000:
        assert parse_filter(text) == f


@given(filters())
def test_compiled_filters_are_one_group_whose_literals_decode_to_the_values(f: Filter) -> None:
    """No value can end its literal or the group early: the engine reads back exactly the user's strings."""
    literals = scan_milvus(compile_filter(f))
    expected: list[str] = []

    def collect(node: Filter) -> None:
        if isinstance(node, Condition):
            if node.field.startswith("metadata."):
                expected.append(node.field.removeprefix("metadata."))
            values = node.value if isinstance(node.value, tuple) else (node.value,)
            strings = [v for v in values if isinstance(v, str)]
            if node.op == "~":
                strings = ["%" + v.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" for v in strings]
            expected.extend(strings)
        elif isinstance(node, Not):
            collect(node.item)
        else:
            for item in node.items:
                collect(item)

    collect(f)
    assert literals == expected


@given(
    st.text(max_size=200)
    | st.lists(st.sampled_from(['"', "\\", "(", ")", "or", "not", "source", "=", "~", "1"])).map(" ".join)
)
def test_arbitrary_text_either_parses_to_one_safe_group_or_is_refused(text: str) -> None:
    """Fuzzing: nothing but InvalidRequest escapes the parser, and whatever parses compiles to one group."""
    try:
        f = parse_filter(text)
    except InvalidRequest:
        return
    scan_milvus(compile_filter(f))


@given(filters(), st.data())
def test_valid_filters_with_a_character_spliced_in_are_refused_or_still_one_group(
    f: Filter, data: st.DataObject
) -> None:
    """Fuzzing near valid input: a quote, backslash or bracket spliced anywhere never breaks out."""
    text = render(f)
    at = data.draw(st.integers(0, len(text)))
    char = data.draw(st.sampled_from(['"', "\\", "(", ")", "[", "]", ",", "'", "\n", "%", " or ", " not "]))
    try:
        spliced = parse_filter(text[:at] + char + text[at:])
    except InvalidRequest:
        return
    scan_milvus(compile_filter(spliced))
