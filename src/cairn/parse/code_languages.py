"""What `cairn.parse.code` knows about each language: grammar, definitions and how to name them.

A `Grammar` says which tree-sitter node types are definitions (and how to title them the way a
reader of that language would: ``def parse``, ``fn main``, ``func (*Server) Serve``,
``impl Display for Point``, ``toString()``), which definitions are containers whose members may be
split out, which nodes only wrap a definition (decorators, ``export``, ``template <...>``), which
comments and attributes attach to the definition below them, and which nodes are transparent
(preprocessor conditionals: their contents count as if written at the enclosing level).

Grammars are loaded on first use and cached; the grammar packages are imported only then.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import tree_sitter

__all__ = ["GRAMMARS", "LANGUAGES", "Grammar", "load_language"]

Titler = Callable[[tree_sitter.Node], str | None]

_MAX_TITLE = 80

LANGUAGES: dict[str, tuple[str, ...]] = {
    "python": (".py", ".pyi"),
    "javascript": (".js", ".mjs", ".cjs", ".jsx"),
    "typescript": (".ts", ".mts", ".cts"),
    "tsx": (".tsx",),
    "go": (".go",),
    "rust": (".rs",),
    "java": (".java",),
    "c": (".c", ".h"),
    "cpp": (".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx"),
}


def _text(node: tree_sitter.Node | None) -> str:
    """The node's source, whitespace collapsed, shortened to a title's length."""
    if node is None or node.text is None:
        return ""
    text = " ".join(node.text.decode("utf-8", errors="replace").split())
    return text if len(text) <= _MAX_TITLE else text[: _MAX_TITLE - 1] + "…"


def _name(node: tree_sitter.Node, field_name: str = "name") -> str:
    return _text(node.child_by_field_name(field_name))


def _multiline(node: tree_sitter.Node) -> bool:
    return node.end_point.row > node.start_point.row and not (
        node.end_point.row == node.start_point.row + 1 and node.end_point.column == 0
    )


def _keyword(keyword: str, *, field_name: str = "name", multiline_only: bool = False) -> Titler:
    """Title ``<keyword> <name>``; with ``multiline_only``, one-line forms (aliases) are no definition."""

    def title(node: tree_sitter.Node) -> str | None:
        if multiline_only and not _multiline(node):
            return None
        name = _name(node, field_name)
        return f"{keyword} {name}" if name else keyword

    return title


def _call(node: tree_sitter.Node) -> str | None:
    """Title ``name()`` for methods and functions of languages with no definition keyword."""
    name = _name(node)
    return f"{name}()" if name else None


def _python_function(node: tree_sitter.Node) -> str | None:
    is_async = node.child_count > 0 and node.children[0].type == "async"
    return f"{'async def' if is_async else 'def'} {_name(node)}"


_FUNCTION_VALUES = frozenset(
    {"arrow_function", "function_expression", "function", "generator_function", "class", "class_expression"}
)


def _js_variable(node: tree_sitter.Node) -> str | None:
    """``const handler = (...) => {...}`` defines a function as much as ``function handler`` does."""
    declarators = [child for child in node.named_children if child.type == "variable_declarator"]
    if len(declarators) != 1:
        return None
    value = declarators[0].child_by_field_name("value")
    if value is None or value.type not in _FUNCTION_VALUES:
        return None
    keyword = node.children[0].type if node.child_count else "const"
    return f"{keyword} {_name(declarators[0])}"


def _js_function(node: tree_sitter.Node) -> str | None:
    star = "*" if any(child.type == "*" for child in node.children) else ""
    return f"function{star} {_name(node)}".rstrip()


def _go_method(node: tree_sitter.Node) -> str | None:
    receiver = node.child_by_field_name("receiver")
    receiver_type = ""
    if receiver is not None:
        for parameter in receiver.named_children:
            receiver_type = _text(parameter.child_by_field_name("type"))
            break
    return f"func ({receiver_type}) {_name(node)}"


def _go_types(node: tree_sitter.Node) -> str | None:
    if not _multiline(node):
        return None
    names = [_name(spec) for spec in node.named_children if spec.type in ("type_spec", "type_alias")]
    return "type " + ", ".join(name for name in names if name)


def _rust_impl(node: tree_sitter.Node) -> str | None:
    trait = node.child_by_field_name("trait")
    target = _text(node.child_by_field_name("type"))
    return f"impl {_text(trait)} for {target}" if trait is not None else f"impl {target}"


def _rust_mod(node: tree_sitter.Node) -> str | None:
    return f"mod {_name(node)}" if node.child_by_field_name("body") is not None else None


def _declarator_name(node: tree_sitter.Node) -> str:
    """The declared name inside C declarators: ``*(*f)(int)`` → ``f``; ``Foo::bar`` stays qualified."""
    declarator = node.child_by_field_name("declarator")
    for _ in range(16):
        if declarator is None:
            return ""
        inner = declarator.child_by_field_name("declarator")
        if inner is None:
            return _text(declarator)
        declarator = inner
    return _text(declarator)


def _c_function(node: tree_sitter.Node) -> str | None:
    name = _declarator_name(node)
    return f"{name}()" if name else None


def _c_tagged(keyword: str) -> Titler:
    """``struct``/``union``/``enum``/``class`` with a body; a bare ``struct foo`` is only a reference."""

    def title(node: tree_sitter.Node) -> str | None:
        if node.child_by_field_name("body") is None:
            return None
        name = _name(node)
        return f"{keyword} {name}" if name else keyword

    return title


def _c_typedef(node: tree_sitter.Node) -> str | None:
    if not _multiline(node):
        return None
    name = _declarator_name(node)
    return f"typedef {name}" if name else "typedef"


@dataclass(frozen=True)
class Grammar:
    """How one language's syntax tree maps onto definitions (see the module docstring)."""

    module: str
    function: str = "language"
    titles: Mapping[str, Titler] = field(default_factory=dict)
    containers: frozenset[str] = frozenset()
    wrappers: frozenset[str] = frozenset()
    attachable: frozenset[str] = frozenset({"comment"})
    transparent: frozenset[str] = frozenset()


_JS_TITLES: dict[str, Titler] = {
    "function_declaration": _js_function,
    "generator_function_declaration": _js_function,
    "class_declaration": _keyword("class"),
    "class": _keyword("class"),
    "method_definition": _call,
    "lexical_declaration": _js_variable,
    "variable_declaration": _js_variable,
}
_TS_TITLES: dict[str, Titler] = {
    **_JS_TITLES,
    "abstract_class_declaration": _keyword("abstract class"),
    "function_signature": _keyword("function"),
    "method_signature": _call,
    "abstract_method_signature": _call,
    "interface_declaration": _keyword("interface"),
    "type_alias_declaration": _keyword("type", multiline_only=True),
    "enum_declaration": _keyword("enum"),
    "internal_module": _keyword("namespace"),
    "module": _keyword("module"),
}
_TS_CONTAINERS = frozenset(
    {"class_declaration", "class", "abstract_class_declaration", "interface_declaration", "internal_module", "module"}
)
_TS_WRAPPERS = frozenset({"export_statement", "expression_statement", "ambient_declaration"})
_PREPROCESSOR = frozenset(
    {"preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif", "preproc_elifdef", "linkage_specification"}
)
_C_TITLES: dict[str, Titler] = {
    "function_definition": _c_function,
    "struct_specifier": _c_tagged("struct"),
    "union_specifier": _c_tagged("union"),
    "enum_specifier": _c_tagged("enum"),
    "type_definition": _c_typedef,
}

GRAMMARS: dict[str, Grammar] = {
    "python": Grammar(
        "tree_sitter_python",
        titles={"function_definition": _python_function, "class_definition": _keyword("class")},
        containers=frozenset({"class_definition"}),
        wrappers=frozenset({"decorated_definition"}),
    ),
    "javascript": Grammar(
        "tree_sitter_javascript",
        titles=_JS_TITLES,
        containers=frozenset({"class_declaration", "class"}),
        wrappers=frozenset({"export_statement"}),
    ),
    "typescript": Grammar(
        "tree_sitter_typescript",
        "language_typescript",
        titles=_TS_TITLES,
        containers=_TS_CONTAINERS,
        wrappers=_TS_WRAPPERS,
    ),
    "tsx": Grammar(
        "tree_sitter_typescript", "language_tsx", titles=_TS_TITLES, containers=_TS_CONTAINERS, wrappers=_TS_WRAPPERS
    ),
    "go": Grammar(
        "tree_sitter_go",
        titles={
            "function_declaration": _keyword("func"),
            "method_declaration": _go_method,
            "type_declaration": _go_types,
        },
    ),
    "rust": Grammar(
        "tree_sitter_rust",
        titles={
            "function_item": _keyword("fn"),
            "function_signature_item": _keyword("fn"),
            "struct_item": _keyword("struct"),
            "enum_item": _keyword("enum"),
            "union_item": _keyword("union"),
            "trait_item": _keyword("trait"),
            "impl_item": _rust_impl,
            "mod_item": _rust_mod,
            "macro_definition": _keyword("macro_rules!"),
            "type_item": _keyword("type", multiline_only=True),
        },
        containers=frozenset({"impl_item", "trait_item", "mod_item"}),
        attachable=frozenset({"line_comment", "block_comment", "attribute_item"}),
    ),
    "java": Grammar(
        "tree_sitter_java",
        titles={
            "class_declaration": _keyword("class"),
            "interface_declaration": _keyword("interface"),
            "enum_declaration": _keyword("enum"),
            "record_declaration": _keyword("record"),
            "annotation_type_declaration": _keyword("@interface"),
            "method_declaration": _call,
            "constructor_declaration": _call,
            "compact_constructor_declaration": _call,
        },
        containers=frozenset(
            {
                "class_declaration",
                "interface_declaration",
                "enum_declaration",
                "record_declaration",
                "annotation_type_declaration",
            }
        ),
        attachable=frozenset({"line_comment", "block_comment"}),
        transparent=frozenset({"enum_body_declarations"}),
    ),
    "c": Grammar("tree_sitter_c", titles=_C_TITLES, transparent=_PREPROCESSOR | {"declaration_list"}),
    "cpp": Grammar(
        "tree_sitter_cpp",
        titles={
            **_C_TITLES,
            "class_specifier": _c_tagged("class"),
            "namespace_definition": _keyword("namespace"),
        },
        containers=frozenset({"class_specifier", "struct_specifier", "union_specifier", "namespace_definition"}),
        wrappers=frozenset({"template_declaration"}),
        transparent=_PREPROCESSOR | {"declaration_list"},
    ),
}


@functools.cache
def load_language(language: str) -> tree_sitter.Language:
    """The tree-sitter grammar of ``language`` (a key of `GRAMMARS`), imported on first use."""
    grammar = GRAMMARS[language]
    module = importlib.import_module(grammar.module)
    return tree_sitter.Language(getattr(module, grammar.function)())
