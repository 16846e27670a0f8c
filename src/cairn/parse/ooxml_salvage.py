"""Repairing a damaged Office package so that its readable parts are read.

python-docx, python-pptx and openpyxl read every part a package's relationships name and give
up on the first that is damaged: one bad sector in an embedded thumbnail, a settings part cut
short by an interrupted copy, or one damaged slide loses the whole document. When a library fails
on a package, `repaired_package` rebuilds it in memory:

- a member whose compressed bytes are damaged (a bad CRC, a broken deflate stream) keeps what
  decompresses before the damage;
- an XML part that is not well-formed (cut short, or damaged) is re-read by libxml2's recovering
  parser, which keeps the elements before the damage;
- a part that yields nothing (an image, a printer-settings blob, XML with no readable element) is
  left out, with the relationships that point at it and the elements that name those
  relationships (a slide's entry in the presentation, a sheet's in the workbook).

Each repair is described in a message that names the part. The package's skeleton (its content
types, its root relationships, and the main part they name) cannot be left out: if one of them is
unreadable the file fails, quoting the first problem.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
import zlib
from dataclasses import dataclass, field

from lxml import etree

from cairn.errors import ParseError

__all__ = ["repaired_package"]

_CONTENT_TYPES = "[Content_Types].xml"
_ROOT_RELS = "_rels/.rels"
_PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_OFFICE_DOCUMENT = "/officeDocument"
_REL_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_CHUNK = 16 * 1024
# libxml2's messages for its safety limits (nesting depth, node and text sizes).
_LIMIT_ERRORS = ("Excessive depth", "XML_PARSE_HUGE", "Huge input lookup")
# Reads XML the way the libraries do: no entities expanded, nothing fetched.
_STRICT = etree.XMLParser(resolve_entities=False, no_network=True)
_RECOVERING = etree.XMLParser(resolve_entities=False, no_network=True, recover=True)


@dataclass
class _Repair:
    members: dict[str, bytes] = field(default_factory=dict)
    dropped: set[str] = field(default_factory=set)
    damaged: set[str] = field(default_factory=set)  # recovered in part
    notes: list[str] = field(default_factory=list)


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[bytes, str | None]:
    """The member's bytes, and what was wrong if they could be read only in part."""
    out = bytearray()
    try:
        with archive.open(info) as member:
            while chunk := member.read(_CHUNK):
                out += chunk
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        reason = "its bytes do not match their checksum" if "CRC" in str(exc) else f"it is damaged ({exc})"
        return bytes(out), reason
    return bytes(out), None


def _is_xml(name: str) -> bool:
    return name.endswith((".xml", ".rels", ".vml"))


def _serialised(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True))


def _valid_name(name: str) -> bool:
    local = name.rsplit("}", 1)[-1]
    return bool(local) and ":" not in local and (local[0].isalpha() or local[0] == "_")


def _sanitised(root: etree._Element) -> bytes | None:
    """The recovered tree without the elements and attributes whose names damage garbled; ``None`` if unusable."""
    if not isinstance(root.tag, str) or not _valid_name(root.tag):
        return None
    for element in list(root.iter()):
        if element is root or not isinstance(element.tag, str):
            continue
        if not _valid_name(element.tag) and (parent := element.getparent()) is not None:
            parent.remove(element)
    for element in root.iter():
        for attribute in [name for name in element.attrib if not _valid_name(str(name))]:
            del element.attrib[attribute]
    _pad_shared_strings(root)
    out = _serialised(root)
    try:
        etree.fromstring(out, _STRICT)
    except etree.XMLSyntaxError:
        return None
    return out


def _pad_shared_strings(root: etree._Element) -> None:
    """A workbook's string table cut short gets empty strings up to its count, so cells still index it."""
    if etree.QName(root).localname != "sst":
        return
    declared = root.get("uniqueCount", "")
    missing = (int(declared) if declared.isdigit() else 0) - len(root)
    item = etree.QName(root.nsmap.get(None, ""), "si").text if root.nsmap.get(None) else "si"
    text = etree.QName(root.nsmap.get(None, ""), "t").text if root.nsmap.get(None) else "t"
    for _ in range(max(0, min(missing, 1_000_000))):
        etree.SubElement(etree.SubElement(root, item), text)


def _recovered_xml(name: str, data: bytes, damage: str | None) -> tuple[bytes | None, str | None]:
    """Well-formed XML for the part (recovered if need be), and a note when something was lost."""
    try:
        etree.fromstring(data, _STRICT)
    except etree.XMLSyntaxError as exc:
        if any(limit in exc.msg for limit in _LIMIT_ERRORS):  # hostile, not damaged: nothing is recovered
            return None, f"the part {name} goes past the XML parser's limits ({exc.msg}); it was left out"
        try:
            root = etree.fromstring(data, _RECOVERING)
        except etree.XMLSyntaxError:  # nothing at all to recover (empty, or no element)
            root = None
        problem = damage or f"its XML is damaged ({exc.msg})"
        recovered = _sanitised(root) if root is not None else None
        if recovered is None:
            return None, f"the part {name} could not be read ({problem}); it was left out"
        return recovered, f"the part {name} is damaged ({problem}); the text before the damage was kept"
    if damage is not None:
        return data, f"the part {name} is damaged ({damage}); what could be read was kept"
    return data, None


def _source_of(rels_name: str) -> str:
    """The part a relationships part belongs to: ``word/_rels/document.xml.rels`` → ``word/document.xml``."""
    folder, base = posixpath.split(rels_name)
    return posixpath.join(posixpath.dirname(folder), base.removesuffix(".rels"))


def _target(source: str, relationship: etree._Element) -> str | None:
    if relationship.get("TargetMode") == "External":
        return None
    target = str(relationship.get("Target", ""))
    if target.startswith("/"):
        return target.lstrip("/")
    return posixpath.normpath(posixpath.join(posixpath.dirname(source), target))


def _main_part(repair: _Repair) -> str | None:
    root = etree.fromstring(repair.members[_ROOT_RELS], _STRICT)
    for relationship in root.iter(f"{{{_PACKAGE_RELS}}}Relationship"):
        if relationship.get("Type", "").endswith(_OFFICE_DOCUMENT):
            return _target("", relationship)
    return None


def _unlink_dropped(repair: _Repair) -> None:
    """Unlink left-out parts: their relationships, the source elements naming those, their content types."""
    types = etree.fromstring(repair.members[_CONTENT_TYPES], _STRICT)
    for override in [element for element in types if str(element.get("PartName", "")).lstrip("/") in repair.dropped]:
        types.remove(override)
    repair.members[_CONTENT_TYPES] = _serialised(types)
    for name in [name for name in repair.members if name.endswith(".rels")]:
        source = _source_of(name)
        root = etree.fromstring(repair.members[name], _STRICT)
        gone = [
            relationship
            for relationship in root.iter(f"{{{_PACKAGE_RELS}}}Relationship")
            if _target(source, relationship) in repair.dropped
        ]
        if not gone:
            continue
        for relationship in gone:
            root.remove(relationship)
        repair.members[name] = _serialised(root)
        ids = {relationship.get("Id") for relationship in gone}
        if source in repair.members and _is_xml(source):
            part = etree.fromstring(repair.members[source], _STRICT)
            naming = [element for element in part.iter() if element.get(_REL_ID) in ids]
            for element in naming:
                parent = element.getparent()
                if parent is not None:
                    parent.remove(element)
            if naming:
                repair.members[source] = _serialised(part)


def _note_missing(repair: _Repair) -> None:
    """Parts that relationships name but the package lacks (a member lost in a bad copy) count as left out."""
    for name in [name for name in repair.members if name.endswith(".rels")]:
        source = _source_of(name)
        root = etree.fromstring(repair.members[name], _STRICT)
        for relationship in root.iter(f"{{{_PACKAGE_RELS}}}Relationship"):
            target = _target(source, relationship)
            if target is not None and target not in repair.members and target not in repair.dropped:
                repair.dropped.add(target)
                repair.notes.append(f"the part {target} named by {name} is missing from the package; it was left out")


def repaired_package(data: bytes, *, drop_damaged: bool = False) -> tuple[bytes, list[str]]:
    """The package rebuilt without its damage, and one note per repair (none: nothing was damaged).

    With ``drop_damaged``, a damaged part other than the main one is left out even where part of it
    could be recovered (for when the library cannot read the recovered part).

    Raises:
        ParseError: a part the package cannot do without (content types, root relationships,
            the main document part) is unreadable, or the ZIP directory itself is.
    """
    repair = _Repair()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                content, damage = _read_member(archive, info)
                if _is_xml(info.filename):
                    fixed, note = _recovered_xml(info.filename, content, damage)
                    if drop_damaged and note is not None and fixed is not None:
                        repair.damaged.add(info.filename)
                elif damage is None:
                    fixed, note = content, None
                else:
                    fixed, note = None, f"the part {info.filename} could not be read ({damage}); it was left out"
                if note is not None:
                    repair.notes.append(note)
                if fixed is None:
                    repair.dropped.add(info.filename)
                else:
                    repair.members[info.filename] = fixed
    except zipfile.BadZipFile as exc:
        raise ParseError(f"the ZIP directory of the package is unreadable ({exc})") from exc
    for essential in (_CONTENT_TYPES, _ROOT_RELS):
        if essential not in repair.members:
            raise ParseError(repair.notes[0] if repair.notes else f"the package has no {essential}")
    main = _main_part(repair)
    if main is None or main not in repair.members:
        problem = next((note for note in repair.notes if main is not None and main in note), None)
        raise ParseError(problem or "the package names no readable main document part")
    for name in sorted(repair.damaged - {main}):
        del repair.members[name]
        repair.dropped.add(name)
        repair.notes = [
            note.replace("the text before the damage was kept", "it was left out") if name in note else note
            for note in repair.notes
        ]
    _note_missing(repair)
    if repair.dropped:
        _unlink_dropped(repair)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as rebuilt:
        for name, content in repair.members.items():
            rebuilt.writestr(name, content)
    return out.getvalue(), repair.notes
