"""What parsers of containers (ZIP archives, emails with attachments) share while they recurse.

A container parser gets a `ParseContext` and hands each member to `ParseContext.parse_member`,
which detects the member's type, parses it as a document of its own, and prefixes its elements'
``Location.member`` with the member's name. Limits on nesting depth, member count and expanded
bytes are shared across the whole outer file, so a bomb cannot escape them by nesting. A member
that is skipped (unsupported type) or fails to parse is recorded in ``problems`` and costs only
that member; exceeding a limit stops the whole file with `LimitExceeded`. Local damage a parser
worked around (see `cairn.parse.salvage`) is recorded in ``warnings``, under the file or member
it was found in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cairn.errors import LimitExceeded, ParseError, UnsupportedFormat
from cairn.models import Element, FailedFile, FileWarning

__all__ = ["MEMBER_SEPARATOR", "ParseContext", "ParseLimits"]

MEMBER_SEPARATOR = "/"


@dataclass(frozen=True)
class ParseLimits:
    """Bounds on what one file may expand into; exceeding one fails that file, and only that file."""

    max_depth: int = 3
    max_members: int = 10_000
    max_expanded_bytes: int = 512 * 1024 * 1024
    max_member_bytes: int = 256 * 1024 * 1024
    # A member that expands more than this many times its compressed size (and beyond 1 MiB) is
    # treated as a decompression bomb.
    max_ratio: int = 200


@dataclass
class _Budget:
    members: int = 0
    expanded_bytes: int = 0


@dataclass
class ParseContext:
    """The state of parsing one file: its path, limits, nesting, member-level problems and warnings."""

    path: str
    limits: ParseLimits = field(default_factory=ParseLimits)
    members: tuple[str, ...] = ()
    problems: list[FailedFile] = field(default_factory=list)
    skipped: list[FailedFile] = field(default_factory=list)
    warnings: list[FileWarning] = field(default_factory=list)
    _budget: _Budget = field(default_factory=_Budget)

    @property
    def depth(self) -> int:
        return len(self.members)

    def display(self, name: str) -> str:
        """How a member is named in reports: ``archive.zip › docs/a.pdf``."""
        return " › ".join((self.path, *self.members, name))

    def admit(self, name: str, size: int) -> None:
        """Count a member of ``size`` expanded bytes against the limits before it is read.

        Raises:
            LimitExceeded: the file nests too deep, has too many members or expands too far.
        """
        budget, limits = self._budget, self.limits
        if self.depth >= limits.max_depth:
            raise LimitExceeded(
                f"{self.display(name)!r} is nested more than {limits.max_depth} containers deep; "
                "unpack the inner archives and add their contents instead"
            )
        budget.members += 1
        if budget.members > limits.max_members:
            raise LimitExceeded(
                f"the file holds more than {limits.max_members} members; split it into smaller archives"
            )
        budget.expanded_bytes += size
        if budget.expanded_bytes > limits.max_expanded_bytes:
            raise LimitExceeded(
                f"the file expands to more than {limits.max_expanded_bytes // (1024 * 1024)} MiB "
                "(a decompression bomb, or simply too large); split it into smaller archives"
            )

    def parse_member(self, data: bytes, name: str) -> list[Element]:
        """Parse one member as a document; its elements' ``member`` gains ``name`` as prefix.

        An unsupported or unparseable member is recorded (``skipped`` or ``problems``) and yields
        no elements; a limit exceeded anywhere below raises `LimitExceeded` for the whole file.
        """
        from cairn.parse import parse_document  # the dispatcher imports the container parsers

        child = ParseContext(
            path=self.path,
            limits=self.limits,
            members=(*self.members, name),
            problems=self.problems,
            skipped=self.skipped,
            warnings=self.warnings,
            _budget=self._budget,
        )
        try:
            elements = parse_document(data, path=self.display(name), context=child)
        except LimitExceeded:
            raise
        except UnsupportedFormat as exc:
            self.skipped.append(FailedFile(path=self.display(name), error=str(exc)))
            return []
        except ParseError as exc:
            self.problems.append(FailedFile(path=self.display(name), error=str(exc)))
            return []
        return [_within(element, name) for element in elements]


def _within(element: Element, name: str) -> Element:
    inner = element.location.member
    member = name if not inner else f"{name}{MEMBER_SEPARATOR}{inner}"
    return element.model_copy(update={"location": element.location.model_copy(update={"member": member})})
