"""Source code parsing: definition boundaries per language, the no-line-lost invariant, long code."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cairn.errors import UnsupportedFormat
from cairn.models import Element
from cairn.parse import code as code_module
from cairn.parse import parse_document
from cairn.parse.code import CLASS_SPLIT_LINES, LANGUAGES, MAX_ELEMENT_LINES, parse_code
from cairn.parse.formats import FORMATS


def _source(text: str) -> bytes:
    return textwrap.dedent(text).lstrip("\n").encode()


def _outline(elements: list[Element]) -> list[tuple[tuple[str, ...], int | None, int | None]]:
    return [(e.location.heading_path, e.location.line_start, e.location.line_end) for e in elements]


def _assert_partition(source: bytes, elements: list[Element]) -> None:
    """Every non-blank line lies in exactly one element, whose text is those lines, in order."""
    lines = source.decode().split("\n")
    covered: list[int] = []
    previous_end = 0
    for element in elements:
        start, end = element.location.line_start, element.location.line_end
        assert start is not None
        assert end is not None
        assert previous_end < start <= end <= len(lines)
        assert element.kind == "code"
        assert element.text == "\n".join(lines[start - 1 : end]).rstrip()
        covered.extend(range(start, end + 1))
        previous_end = end
    non_blank = [number for number, line in enumerate(lines, start=1) if line.strip()]
    assert set(non_blank) <= set(covered)


PYTHON = _source(
    '''
    """Store and fetch records."""

    import json
    from pathlib import Path

    DEFAULT_ROOT = Path("/var/lib/records")


    # Records are stored one JSON file each.
    @dataclass(frozen=True)
    class Record:
        """One stored record."""

        key: str
        body: dict

        def path(self, root: Path) -> Path:
            return root / f"{self.key}.json"


    async def fetch(key: str) -> Record:
        """Read a record back."""
        with open(key) as handle:
            return Record(key, json.load(handle))


    if __name__ == "__main__":
        print(fetch("demo"))
    '''
)


def test_python_definitions_are_elements_with_comments_and_decorators_attached() -> None:
    """Each top-level def/class is one element named in its heading path; a comment and decorator above belong to it."""
    elements = parse_code(PYTHON, "python")

    assert _outline(elements) == [
        ((), 1, 6),
        (("class Record",), 9, 18),
        (("async def fetch",), 21, 24),
        ((), 27, 28),
    ]
    assert elements[1].text.startswith(
        "# Records are stored one JSON file each.\n@dataclass(frozen=True)\nclass Record:"
    )
    assert elements[1].location.label == "class Record, lines 9–18"
    _assert_partition(PYTHON, elements)


def _python_class(methods: int, body_lines: int) -> str:
    out = ["class Ledger:", '    """Money in and out."""', "", "    currency = 'EUR'", ""]
    for index in range(methods):
        out.append(f"    def method_{index}(self, amount):")
        out.extend(f"        amount += {line}" for line in range(body_lines))
        out.append("        return amount")
        out.append("")
    return "\n".join(out)


def test_large_python_class_is_split_into_header_and_methods() -> None:
    """A class longer than CLASS_SPLIT_LINES becomes a header element plus one element per method."""
    source = _python_class(methods=6, body_lines=10).encode()
    assert source.count(b"\n") > CLASS_SPLIT_LINES

    elements = parse_code(source, "python")

    assert [e.location.heading_path for e in elements] == [
        ("class Ledger",),
        *[("class Ledger", f"def method_{index}") for index in range(6)],
    ]
    assert elements[0].text == 'class Ledger:\n    """Money in and out."""\n\n    currency = \'EUR\''
    assert elements[1].text.startswith("    def method_0(self, amount):")
    _assert_partition(source, elements)


def test_small_python_class_stays_one_element() -> None:
    """A class shorter than CLASS_SPLIT_LINES is kept whole, methods included."""
    source = _python_class(methods=2, body_lines=3).encode()

    elements = parse_code(source, "python")

    assert _outline(elements) == [(("class Ledger",), 1, source.decode().rstrip().count("\n") + 1)]


def test_overlong_function_is_cut_into_parts_at_statement_boundaries() -> None:
    """A function longer than MAX_ELEMENT_LINES becomes consecutive parts, each starting at a statement."""
    body = [f"    total += compute({n})" if n % 7 else f"    if total > {n}:\n        total = {n}" for n in range(300)]
    source = ("def accumulate(total):\n" + "\n".join(body) + "\n    return total\n").encode()

    elements = parse_code(source, "python")

    assert len(elements) >= 3
    assert all(e.location.heading_path == ("def accumulate",) for e in elements)
    for element in elements:
        assert element.location.line_end - element.location.line_start + 1 <= MAX_ELEMENT_LINES  # type: ignore[operator]
        first = element.text.split("\n")[0]
        assert first.startswith(("def accumulate", "    total", "    if ", "    return")), first
    _assert_partition(source, elements)


def test_python_syntax_error_still_yields_every_line() -> None:
    """A file tree-sitter cannot parse cleanly loses no line."""
    source = _source(
        """
        def broken(:
            return [1, 2

        class Fine:
            pass

        x = = 3
        )))
        def after():
            return 1
        """
    )

    elements = parse_code(source, "python")

    _assert_partition(source, elements)
    assert any(e.location.heading_path == ("def after",) for e in elements)


def test_invalid_utf8_is_decoded_leniently() -> None:
    """Bytes that are not UTF-8 (here Latin-1) are decoded, not rejected."""
    source = "# Auteur : Jérôme\ndef salut():\n    return 'café'\n".encode("latin-1")

    elements = parse_code(source, "python")

    assert "Jérôme" in elements[0].text
    assert "café" in elements[-1].text


def test_windows_line_ends_keep_line_numbers() -> None:
    """CRLF files get the same line numbers as LF files."""
    lf = parse_code(PYTHON, "python")
    crlf = parse_code(PYTHON.replace(b"\n", b"\r\n"), "python")

    assert _outline(crlf) == _outline(lf)


def test_parse_timeout_falls_back_to_blank_line_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """When tree-sitter runs out of time, the file is still cut by lines and loses nothing."""
    monkeypatch.setattr(code_module, "PARSE_TIMEOUT_S", -1.0)
    source = "\n\n".join(f"def f{n}():\n    return {n}" for n in range(400)).encode()

    elements = parse_code(source, "python")

    assert all(e.location.heading_path == () for e in elements)
    _assert_partition(source, elements)


def test_unknown_language_is_unsupported() -> None:
    """Asking for a language without a grammar raises UnsupportedFormat naming the supported ones."""
    with pytest.raises(UnsupportedFormat, match="python"):
        parse_code(b"print(1)", "cobol")


def test_every_language_has_extensions_and_loads() -> None:
    """Each language maps to file extensions and its grammar parses an empty file."""
    for language, extensions in LANGUAGES.items():
        assert extensions
        assert all(ext.startswith(".") for ext in extensions)
        assert parse_code(b"", language) == []


def test_languages_match_the_format_registry() -> None:
    """The format table registers exactly the languages (and extensions) the code parser has grammars for."""
    registered = {f.options["language"]: f.extensions for f in FORMATS if f.parser == "code:parse_code"}

    assert registered == LANGUAGES


def test_parse_document_routes_source_files_to_the_code_parser() -> None:
    """A .go file goes through detection and the registry to parse_code with language 'go'."""
    elements = parse_document(b"package main\n\nfunc main() {}\n", path="cmd/main.go")

    assert [(e.kind, e.location.heading_path) for e in elements] == [("code", ()), ("code", ("func main",))]


JAVASCRIPT = _source(
    """
    import { readFile } from "node:fs/promises";

    // Parses the settings file.
    export async function loadSettings(path) {
      const raw = await readFile(path, "utf8");
      return JSON.parse(raw);
    }

    const merge = (base, extra) => ({ ...base, ...extra });

    export default class Settings {
      constructor(values) {
        this.values = values;
      }
    }

    module.exports = { loadSettings, merge };
    """
)

TYPESCRIPT = _source(
    """
    import type { Request } from "express";

    export interface User {
      id: string;
      name: string;
    }

    type UserId = User["id"];

    export enum Role {
      Admin,
      Reader,
    }

    export function currentUser(request: Request): User | undefined {
      return request.user as User | undefined;
    }
    """
)

TSX = _source(
    """
    import React from "react";

    type Props = {
      name: string;
    };

    export function Greeting({ name }: Props) {
      return <p className="greeting">Hello, {name}!</p>;
    }
    """
)

GO = _source(
    """
    package cache

    import "sync"

    // Cache is a concurrency-safe map.
    type Cache struct {
        mu    sync.Mutex
        items map[string]string
    }

    // Get returns the value stored under key.
    func (c *Cache) Get(key string) (string, bool) {
        c.mu.Lock()
        defer c.mu.Unlock()
        value, ok := c.items[key]
        return value, ok
    }

    func New() *Cache {
        return &Cache{items: map[string]string{}}
    }
    """
).replace(b"    ", b"\t")  # gofmt indents with tabs

RUST = _source(
    """
    use std::fmt;

    /// A point on the plane.
    #[derive(Debug, Clone, Copy)]
    pub struct Point {
        x: f64,
        y: f64,
    }

    impl fmt::Display for Point {
        fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "({}, {})", self.x, self.y)
        }
    }

    pub fn origin() -> Point {
        Point { x: 0.0, y: 0.0 }
    }
    """
)

JAVA = _source(
    """
    package org.example.shop;

    import java.util.List;

    /**
     * A shopping basket.
     */
    public class Basket {
        private final List<String> items;

        public Basket(List<String> items) {
            this.items = items;
        }

        @Override
        public String toString() {
            return String.join(", ", items);
        }
    }

    interface Priced {
        double price();
    }
    """
)

C = _source(
    """
    #include <stdio.h>
    #include <stdlib.h>

    /* A singly linked list node. */
    struct node {
        int value;
        struct node *next;
    };

    static int count = 0;

    /* Push a value in front of the list. */
    static struct node *push(struct node *head, int value)
    {
        struct node *n = malloc(sizeof *n);
        n->value = value;
        n->next = head;
        count++;
        return n;
    }

    int main(void)
    {
        printf("%d\\n", push(NULL, 1)->value);
        return 0;
    }
    """
)

CPP = _source(
    """
    #include <string>

    namespace shop {

    template <typename T>
    class Box {
     public:
      explicit Box(T value) : value_(value) {}
      T get() const { return value_; }

     private:
      T value_;
    };

    }  // namespace shop

    int Counter::next() {
      return ++count_;
    }
    """
)

LANGUAGE_SAMPLES = [
    pytest.param(
        "javascript",
        JAVASCRIPT,
        [
            ((), 1, 1),
            (("function loadSettings",), 3, 7),
            (("const merge",), 9, 9),
            (("class Settings",), 11, 15),
            ((), 17, 17),
        ],
        id="javascript",
    ),
    pytest.param(
        "typescript",
        TYPESCRIPT,
        [
            ((), 1, 1),
            (("interface User",), 3, 6),
            ((), 8, 8),
            (("enum Role",), 10, 13),
            (("function currentUser",), 15, 17),
        ],
        id="typescript",
    ),
    pytest.param("tsx", TSX, [((), 1, 1), (("type Props",), 3, 5), (("function Greeting",), 7, 9)], id="tsx"),
    pytest.param(
        "go",
        GO,
        [((), 1, 3), (("type Cache",), 5, 9), (("func (*Cache) Get",), 11, 17), (("func New",), 19, 21)],
        id="go",
    ),
    pytest.param(
        "rust",
        RUST,
        [((), 1, 1), (("struct Point",), 3, 8), (("impl fmt::Display for Point",), 10, 14), (("fn origin",), 16, 18)],
        id="rust",
    ),
    pytest.param("java", JAVA, [((), 1, 3), (("class Basket",), 5, 19), (("interface Priced",), 21, 23)], id="java"),
    pytest.param(
        "c",
        C,
        [((), 1, 2), (("struct node",), 4, 8), ((), 10, 10), (("push()",), 12, 20), (("main()",), 22, 26)],
        id="c",
    ),
    pytest.param("cpp", CPP, [((), 1, 1), (("namespace shop",), 3, 15), (("Counter::next()",), 17, 19)], id="cpp"),
]


@pytest.mark.parametrize(("language", "source", "expected"), LANGUAGE_SAMPLES)
def test_definition_boundaries_per_language(
    language: str, source: bytes, expected: list[tuple[tuple[str, ...], int, int]]
) -> None:
    """Each language's definitions (with the comments and attributes above them) are elements of their own."""
    elements = parse_code(source, language)

    assert _outline(elements) == expected
    _assert_partition(source, elements)


def test_large_java_class_members_carry_the_class_in_their_path() -> None:
    """Members of a long Java class are split out with their Javadoc and annotations; the closing brace stays."""
    methods = "\n\n".join(
        f"    /** Returns {n}. */\n    @Deprecated\n    public int value{n}() {{\n"
        + "\n".join(f"        int v{k} = {k};" for k in range(8))
        + f"\n        return {n};\n    }}"
        for n in range(5)
    )
    source = f"public class Values {{\n    private int seed;\n\n{methods}\n}}\n".encode()

    elements = parse_code(source, "java")

    assert [e.location.heading_path for e in elements] == [
        ("class Values",),
        *[("class Values", f"value{n}()") for n in range(5)],
    ]
    assert elements[2].text.startswith("    /** Returns 1. */\n    @Deprecated\n")
    assert elements[-1].text.endswith("return 4;\n    }\n}")
    _assert_partition(source, elements)


# --- property: any module built from definition templates is partitioned -------------------------

_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(lambda n: n not in {"def", "class", "if"})
_BLANKS = st.integers(min_value=0, max_value=2).map(lambda n: [""] * n)


@st.composite
def _statements(draw: st.DrawFn, indent: str) -> list[str]:
    count = draw(st.integers(min_value=1, max_value=140))
    lines: list[str] = []
    for n in range(count):
        kind = draw(st.sampled_from(["assign", "if", "comment", "blank", "call"]))
        if kind == "assign":
            lines.append(f"{indent}value_{n} = {n} * 2")
        elif kind == "if":
            lines.extend([f"{indent}if value > {n}:", f"{indent}    value -= {n}"])
        elif kind == "comment":
            lines.append(f"{indent}# step {n}")
        elif kind == "blank":
            lines.append("")
        else:
            lines.append(f"{indent}print({n}, end='')")
    lines.append(f"{indent}return None")
    return lines


@st.composite
def _function(draw: st.DrawFn, indent: str = "") -> list[str]:
    lines: list[str] = []
    if draw(st.booleans()):
        lines.append(f"{indent}# {draw(_NAMES)} helper")
    if draw(st.booleans()):
        lines.append(f"{indent}@decorator_{draw(_NAMES)}")
    self_arg = "self, " if indent else ""
    lines.append(f"{indent}def {draw(_NAMES)}({self_arg}value):")
    if draw(st.booleans()):
        lines.append(f'{indent}    """Docstring of the function."""')
    lines.extend(draw(_statements(indent + "    ")))
    return lines


@st.composite
def _class(draw: st.DrawFn) -> list[str]:
    lines = [f"class {draw(_NAMES).capitalize()}({draw(_NAMES)}):"]
    if draw(st.booleans()):
        lines.append('    """Docstring of the class."""')
    lines.extend(f"    attribute_{n} = {n}" for n in range(draw(st.integers(min_value=0, max_value=3))))
    for _ in range(draw(st.integers(min_value=0, max_value=5))):
        lines.extend(draw(_BLANKS))
        lines.extend(draw(_function("    ")))
    if len(lines) == 1:
        lines.append("    pass")
    return lines


_TOP_LEVEL = st.one_of(
    _function(),
    _class(),
    st.just(["import os", "from pathlib import Path"]),
    st.just(["CONSTANT = 42"]),
    st.just(["# a module comment"]),
    st.just(['if __name__ == "__main__":', "    main()"]),
)


@st.composite
def _python_module(draw: st.DrawFn) -> str:
    lines: list[str] = []
    if draw(st.booleans()):
        lines.append('"""Module docstring."""')
    for part in draw(st.lists(_TOP_LEVEL, min_size=1, max_size=8)):
        lines.extend(draw(_BLANKS))
        lines.extend(part)
    return "\n".join(lines) + "\n"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(_python_module())
def test_any_python_module_is_partitioned_into_elements(module: str) -> None:
    """Every non-blank line is in exactly one element; ranges are valid, ordered, and at most MAX_ELEMENT_LINES."""
    source = module.encode()

    elements = parse_code(source, "python")

    _assert_partition(source, elements)
    for element in elements:
        assert element.location.line_end - element.location.line_start + 1 <= MAX_ELEMENT_LINES  # type: ignore[operator]
    top_level = {line.split("(")[0].removeprefix("def ") for line in module.split("\n") if line.startswith("def ")}
    named = {e.location.heading_path[0].removeprefix("def ") for e in elements if e.location.heading_path}
    assert top_level <= named
