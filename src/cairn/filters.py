"""User search filters: a small language compiled to self-contained Milvus boolean expressions.

A filter narrows a search by document metadata, written as text::

    mime = "application/pdf" and version >= 2 and not (metadata.status in ["closed", "spam"])

or as the same tree in JSON (see ``filter_from_json``). Grammar (keywords are case-insensitive)::

    filter    = or_expr END
    or_expr   = and_expr { "or" and_expr }
    and_expr  = unary { "and" unary }
    unary     = "not" unary | "(" or_expr ")" | condition
    condition = field ( compare value | [ "not" ] "in" "[" value { "," value } "]" | "~" string )
    compare   = "=" | "==" | "!=" | "<" | "<=" | ">" | ">="
    field     = "source" | "mime" | "doc_id" | "version" | "created_at" | "metadata." key
    value     = string | integer
    string    = a double-quoted JSON string, e.g. "a \\"quoted\\" word"
    integer   = [ "-" ] digit { digit }           (64-bit; no decimals or exponents)

``field ~ "text"`` means *contains* (case-sensitive substring). ``<``, ``<=``, ``>``, ``>=`` apply to
``version`` and ``created_at`` (unix seconds) only; ``~`` to text fields only; ``in`` takes 1-100 values.
``metadata.key != v`` and ``not (metadata.key in [...])`` also match rows that lack the key.

Safety: users never write engine syntax. Fields come from an allowlist (``tenant`` and ``allowed`` are
the server's), values are type-checked and re-quoted by this module, and every compiled expression is
one parenthesised group, so whatever the server ANDs after it cannot be escaped.

Milvus Lite 2.5.1, as checked by tests/integration/test_filters_engine.py:

* ``not (...)`` and ``not like`` are rejected, so ``Not`` is pushed down to the leaves (De Morgan,
  inverted comparisons, ``not in``) and a negated ``~`` is refused.
* String literals decode only ``\\\\`` and ``\\"``; ``\\n`` and ``\\uXXXX`` stay verbatim and a raw line
  break is a syntax error, so values with control characters are refused. Other Unicode passes as-is.
* ``like "%%"`` matches nothing, so ``~ ""`` is refused; a float against an INT64 field is an error.
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from cairn.errors import InvalidRequest

__all__ = ["All", "Any", "Condition", "Filter", "Not", "compile_filter", "filter_from_json", "parse_filter"]

MAX_TEXT_CHARS = 2_000
MAX_CONDITIONS = 32
MAX_DEPTH = 16
MAX_IN_VALUES = 100
MAX_VALUE_CHARS = 1_024
MAX_TOTAL_VALUE_CHARS = 16_384

TEXT_FIELDS = ("source", "mime", "doc_id")
NUMBER_FIELDS = ("version", "created_at")
SERVER_FIELDS = ("tenant", "allowed")
OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "in", "~")
_ORDER_OPS = ("<", "<=", ">", ">=")
_NEGATED = {"=": "!=", "!=": "=", "<": ">=", ">=": "<", ">": "<=", "<=": ">", "in": "not in"}
_ALLOWED = ", ".join((*TEXT_FIELDS, *NUMBER_FIELDS, "metadata.<key>"))
_METADATA_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

Scalar = str | int


@dataclass(frozen=True)
class Condition:
    """``field op value``; validated on construction (``==`` is stored as ``=``, ``in`` takes a tuple)."""

    field: str
    op: str
    value: Scalar | tuple[Scalar, ...]

    def __post_init__(self) -> None:
        if self.op == "==":
            object.__setattr__(self, "op", "=")
        _check_condition(self)


@dataclass(frozen=True)
class _Group:
    items: tuple[Filter, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.items, tuple) or not self.items:
            raise InvalidRequest(f"'{type(self).__name__.lower()}' needs a non-empty list of filters")


class All(_Group):
    """Every item holds."""


class Any(_Group):
    """At least one item holds."""


@dataclass(frozen=True)
class Not:
    """The item does not hold."""

    item: Filter


Filter = Condition | All | Any | Not


# -- validation ------------------------------------------------------------------------------
def _field_type(field: object) -> type:
    if not isinstance(field, str):
        raise InvalidRequest(f"a filter field must be a string, not {type(field).__name__}")
    if field in TEXT_FIELDS:
        return str
    if field in NUMBER_FIELDS:
        return int
    if field in SERVER_FIELDS:
        raise InvalidRequest(f"{field!r} cannot be filtered on: it is set by the server from the caller's identity")
    if field.startswith("metadata."):
        key = field.removeprefix("metadata.")
        if _METADATA_KEY.fullmatch(key):
            return str
        raise InvalidRequest(
            f"invalid metadata key {key[:80]!r}: use 1-64 ASCII letters, digits or '_', not starting with a digit"
        )
    raise InvalidRequest(f"unknown filter field {field[:80]!r}: allowed fields are {_ALLOWED}")


def _check_value(field: str, kind: type, value: object) -> None:
    if kind is int:
        if type(value) is not int:
            raise InvalidRequest(f"{field} compares with integers, not {type(value).__name__}")
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise InvalidRequest(f"a {field} value is outside the 64-bit integer range")
        return
    if not isinstance(value, str):
        raise InvalidRequest(f"{field} compares with strings, not {type(value).__name__}")
    if len(value) > MAX_VALUE_CHARS:
        raise InvalidRequest(f"a {field} value is {len(value)} characters long; the limit is {MAX_VALUE_CHARS}")
    for ch in value:
        # Control characters cannot be written in an engine string literal (see the module docstring);
        # lone surrogates cannot be encoded as UTF-8 at all.
        if unicodedata.category(ch) in ("Cc", "Cs"):
            raise InvalidRequest(
                f"a {field} value contains U+{ord(ch):04X}; control characters and lone surrogates are not allowed"
            )


def _check_condition(c: Condition) -> None:
    kind = _field_type(c.field)
    if not isinstance(c.op, str) or c.op not in OPERATORS:
        raise InvalidRequest(f"unknown operator {str(c.op)[:20]!r}: use one of = == != < <= > >= in ~")
    if c.op in _ORDER_OPS and kind is not int:
        raise InvalidRequest(f"{c.op} needs a numeric field ({', '.join(NUMBER_FIELDS)}); {c.field} is text")
    if c.op == "~" and kind is not str:
        raise InvalidRequest(f"~ (contains) needs a text field; {c.field} is numeric")
    if c.op != "in":
        _check_value(c.field, kind, c.value)
        if c.op == "~" and c.value == "":
            raise InvalidRequest(f"{c.field} ~ needs a non-empty string")
        return
    if not isinstance(c.value, tuple) or not 1 <= len(c.value) <= MAX_IN_VALUES:
        raise InvalidRequest(f"{c.field} in needs a list of 1 to {MAX_IN_VALUES} values")
    for value in c.value:
        _check_value(c.field, kind, value)


def _check_tree(f: object, depth: int = 0, negated: bool = False, totals: list[int] | None = None) -> None:
    """Enforce the size limits, and refuse what the engine cannot evaluate (a negated ``~``)."""
    totals = [0, 0] if totals is None else totals  # conditions, characters of string values
    if depth > MAX_DEPTH:
        raise InvalidRequest(f"the filter nests more than {MAX_DEPTH} levels deep; flatten it")
    if isinstance(f, Condition):
        _check_condition(f)
        totals[0] += 1
        values = f.value if isinstance(f.value, tuple) else (f.value,)
        totals[1] += sum(len(v) for v in values if isinstance(v, str))
        if totals[0] > MAX_CONDITIONS:
            raise InvalidRequest(f"the filter has more than {MAX_CONDITIONS} conditions")
        if totals[1] > MAX_TOTAL_VALUE_CHARS:
            raise InvalidRequest(f"the filter's strings total more than {MAX_TOTAL_VALUE_CHARS} characters")
        if negated and f.op == "~":
            raise InvalidRequest(f"'{f.field} ~ ...' cannot be negated: the engine has no 'not like'")
    elif isinstance(f, All | Any):
        for item in f.items:
            _check_tree(item, depth + 1, negated, totals)
    elif isinstance(f, Not):
        _check_tree(f.item, depth + 1, not negated, totals)
    else:
        raise InvalidRequest(f"not a filter: {type(f).__name__}")


# -- compiling -------------------------------------------------------------------------------
def compile_filter(f: Filter) -> str:
    """The Milvus expression for ``f``: one parenthesised group, safe to AND with server constraints."""
    _check_tree(f)
    return _compile(f, negate=False)


def _compile(f: Filter, negate: bool) -> str:
    if isinstance(f, Condition):
        return _compile_condition(f, negate)
    if isinstance(f, Not):
        return _compile(f.item, not negate)
    joiner = " and " if isinstance(f, All) != negate else " or "  # De Morgan when negated
    return "(" + joiner.join(_compile(item, negate) for item in f.items) + ")"


def _compile_condition(c: Condition, negate: bool) -> str:
    target = c.field
    if target.startswith("metadata."):
        target = f'metadata["{target.removeprefix("metadata.")}"]'  # the key matched _METADATA_KEY
    if c.op == "~":  # never negated here: _check_tree refused that
        return f"({target} like {_quote('%' + _escape_like(str(c.value)) + '%')})"
    op = _NEGATED[c.op] if negate else c.op
    if isinstance(c.value, tuple):
        return f"({target} {op} [{', '.join(_literal(v) for v in c.value)}])"
    return f"({target} {'==' if op == '=' else op} {_literal(c.value)})"


def _literal(value: Scalar) -> str:
    return str(int(value)) if type(value) is int else _quote(str(value))


def _quote(text: str) -> str:
    # Milvus decodes \\ and \" in double-quoted literals; values were checked free of control characters.
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# -- JSON form -------------------------------------------------------------------------------
def filter_from_json(obj: object) -> Filter:
    """A filter from decoded JSON.

    Accepts ``{"field": ..., "op": ..., "value": ...}`` (``value`` a list for ``in``), ``{"all": [...]}``,
    ``{"any": [...]}``, ``{"not": {...}}``, or a list of any of these (all must hold).
    """
    f = _from_json(obj, "filter", 0)
    _check_tree(f)
    return f


def _from_json(obj: object, path: str, depth: int) -> Filter:
    if depth > MAX_DEPTH:
        raise InvalidRequest(f"{path}: the filter nests more than {MAX_DEPTH} levels deep; flatten it")
    if isinstance(obj, list):
        return _items(obj, path, depth, All)
    if isinstance(obj, dict) and set(obj) == {"field", "op", "value"}:
        value = tuple(obj["value"]) if isinstance(obj["value"], list) else obj["value"]
        try:
            return Condition(obj["field"], obj["op"], value)
        except InvalidRequest as exc:
            raise InvalidRequest(f"{path}: {exc}") from None
    if isinstance(obj, dict) and len(obj) == 1:
        key = next(iter(obj))
        if key == "not":
            return Not(_from_json(obj["not"], f"{path}.not", depth + 1))
        if key in ("all", "any") and isinstance(obj[key], list):
            return _items(obj[key], f"{path}.{key}", depth + 1, All if key == "all" else Any)
    raise InvalidRequest(
        f'{path}: expected {{"field", "op", "value"}}, {{"all": [...]}}, {{"any": [...]}}, {{"not": ...}} '
        f"or a list of them, not {_shape(obj)}"
    )


def _shape(obj: object) -> str:
    keys = sorted(str(key)[:20] for key in obj) if isinstance(obj, dict) else []
    return f"an object with keys {keys[:8]}" if isinstance(obj, dict) else type(obj).__name__


def _items(objs: list[object], path: str, depth: int, node: type[All] | type[Any]) -> Filter:
    if not 1 <= len(objs) <= MAX_CONDITIONS:
        raise InvalidRequest(f"{path}: give 1 to {MAX_CONDITIONS} filters")
    items = tuple(_from_json(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(objs))
    return items[0] if len(items) == 1 else node(items)


# -- text form -------------------------------------------------------------------------------
class _Token(NamedTuple):
    kind: str  # name, keyword, string, integer, operator, punct, end
    text: str
    pos: int


_KEYWORDS = ("and", "or", "not", "in")
_NAME_START = frozenset(string.ascii_letters + "_")
_NAME_CHARS = _NAME_START | frozenset(string.digits + ".")
_DIGITS = frozenset(string.digits)
_SPACE = frozenset(" \t\r\n")
_SYMBOLS = ("==", "!=", "<=", ">=", "=", "<", ">", "~", "(", ")", "[", "]", ",")  # longest first


def _syntax_error(pos: int, message: str) -> InvalidRequest:
    return InvalidRequest(f"filter syntax error at character {pos + 1}: {message}")


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        ch, start = text[i], i
        if ch in _SPACE:
            i += 1
            continue
        if ch == '"':
            i += 1
            while i < len(text) and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            if i >= len(text):
                raise _syntax_error(start, "unterminated string (strings are double-quoted)")
            i += 1
            tokens.append(_Token("string", text[start:i], start))
        elif ch in _DIGITS or (ch == "-" and text[i + 1 : i + 2] in _DIGITS):
            i += 1
            while i < len(text) and text[i] in _DIGITS:
                i += 1
            if i < len(text) and text[i] in _NAME_CHARS:
                raise _syntax_error(start, "numbers are integers (no decimals, exponents or letters)")
            tokens.append(_Token("integer", text[start:i], start))
        elif ch in _NAME_START:
            while i < len(text) and text[i] in _NAME_CHARS:
                i += 1
            word = text[start:i]
            kind = "keyword" if word.lower() in _KEYWORDS else "name"
            tokens.append(_Token(kind, word.lower() if kind == "keyword" else word, start))
        else:
            symbol = next((s for s in _SYMBOLS if text.startswith(s, i)), None)
            if symbol is None:
                raise _syntax_error(start, f"unexpected character {ch!r}")
            i += len(symbol)
            tokens.append(_Token("punct" if symbol in "()[]," else "operator", symbol, start))
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _Parser:
    """Recursive descent over the grammar in the module docstring."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.at = 0
        self.nesting = 0

    def take(self, kind: str, text: str | None = None) -> _Token | None:
        """The next token, consumed, if it has this kind (and text); else None."""
        token = self.tokens[self.at]
        if token.kind != kind or (text is not None and token.text != text):
            return None
        self.at += token.kind != "end"
        return token

    def expect(self, expected: str, kind: str, text: str | None = None) -> _Token:
        token = self.take(kind, text)
        if token is None:
            found = self.tokens[self.at]
            what = "the end of the filter" if found.kind == "end" else repr(found.text[:40])
            raise _syntax_error(found.pos, f"expected {expected}, found {what}")
        return token

    def parse(self) -> Filter:
        f = self.expression("or")
        self.expect("'and', 'or' or the end of the filter", "end")
        return f

    def expression(self, keyword: str) -> Filter:
        """``or_expr`` (keyword "or") or ``and_expr`` (keyword "and")."""
        operand: Callable[[], Filter] = (lambda: self.expression("and")) if keyword == "or" else self.unary
        items = [operand()]
        while self.take("keyword", keyword):
            items.append(operand())
        return items[0] if len(items) == 1 else (Any if keyword == "or" else All)(tuple(items))

    def unary(self) -> Filter:
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise _syntax_error(self.tokens[self.at].pos, f"the filter nests more than {MAX_DEPTH} levels deep")
        if self.take("keyword", "not"):
            f: Filter = Not(self.unary())
        elif self.take("punct", "("):
            f = self.expression("or")
            self.expect("')', 'and' or 'or'", "punct", ")")
        else:
            f = self.condition()
        self.nesting -= 1
        return f

    def condition(self) -> Filter:
        field = self.expect("a field name, 'not' or '('", "name")
        value: Scalar | tuple[Scalar, ...]
        negated = self.take("keyword", "not") is not None  # `field not in [...]`
        if negated or self.take("keyword", "in"):
            if negated:
                self.expect("'in' after 'not'", "keyword", "in")
            self.expect("'[' after 'in'", "punct", "[")
            values = [self.value()]
            while self.take("punct", ","):
                values.append(self.value())
            self.expect("',' or ']'", "punct", "]")
            op, value = "in", tuple[Scalar, ...](values)
        else:
            op, value = self.expect("an operator: = != < <= > >= in ~", "operator").text, self.value()
        try:
            return Not(Condition(field.text, op, value)) if negated else Condition(field.text, op, value)
        except InvalidRequest as exc:
            raise InvalidRequest(f"filter error at character {field.pos + 1}: {exc}") from None

    def value(self) -> Scalar:
        if token := self.take("integer"):
            return int(token.text)
        token = self.expect('a "double-quoted string" or an integer', "string")
        try:
            decoded = json.loads(token.text)
        except json.JSONDecodeError as exc:
            message = exc.msg.removesuffix(" at").lower()
            raise _syntax_error(token.pos + exc.pos, f"invalid string: {message} (strings are JSON strings)") from None
        if not isinstance(decoded, str):  # cannot happen: the token is one double-quoted JSON string
            raise _syntax_error(token.pos, "invalid string")
        return decoded


def parse_filter(text: str) -> Filter:
    """The filter written in ``text`` (grammar in the module docstring), validated and within limits."""
    if not isinstance(text, str):
        raise InvalidRequest(f"a filter must be a string, not {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidRequest(f"the filter is {len(text)} characters long; the limit is {MAX_TEXT_CHARS}")
    if not text.strip():
        raise InvalidRequest("the filter is empty; leave it out to search everything")
    f = _Parser(text).parse()
    _check_tree(f)
    return f
