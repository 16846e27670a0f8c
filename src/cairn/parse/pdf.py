"""PDF parsing with pypdfium2: the text layer of each page, split into paragraphs; OCR for scans.

PDF text layers rarely contain blank lines, so paragraph breaks are found from geometry:
a line starts a new paragraph when the vertical gap above it is clearly wider than the
page's usual line gap, when the font size changes, or when the text jumps back up the page
(a new column).

A page with no text layer but something drawn on it, or with fewer than `MIN_TEXT_CHARS`
characters of text and an image (a scan with a stamped page number), is rendered at
`RENDER_DPI` (less if that would exceed `MAX_IMAGE_PIXELS`) and read by OCR (`ocr_image`);
its paragraphs are located by page like any other. Blank pages are skipped.

PDFium is not thread-safe, so all calls into it are serialised by a module-level lock; OCR runs
outside the lock, so other documents are read meanwhile. Pages, text pages and bitmaps are
closed as soon as they are read, keeping memory bounded by one page.
"""

from __future__ import annotations

import itertools
import math
import re
import statistics
import threading
from dataclasses import dataclass

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image

from cairn.errors import ParseError
from cairn.models import Element, Location

from .ocr import MAX_IMAGE_PIXELS, ocr_image
from .salvage import warn
from .text import make_element

__all__ = ["MIN_TEXT_CHARS", "RENDER_DPI", "parse_pdf"]

RENDER_DPI = 300
# A page with fewer non-space characters of text than this, and an image, is treated as scanned.
MIN_TEXT_CHARS = 10
_POINTS_PER_INCH = 72

_PDFIUM_LOCK = threading.Lock()
_LINE_END = re.compile(r"\r\n|\r|\n")
# A gap counts as a paragraph break when it exceeds the usual gap by this share of a line height.
_EXTRA_GAP = 0.5
# Neighbouring lines whose font heights differ by more than this ratio belong to different blocks.
_SIZE_CHANGE = 1.25
_MIN_GAPS = 3


@dataclass(frozen=True)
class _Line:
    text: str
    bottom: float | None = None
    top: float | None = None

    @property
    def height(self) -> float:
        return (self.top - self.bottom) if self.top is not None and self.bottom is not None else 0.0


class _DamagedPage(Exception):
    """One page could not be read; the message says which and that it was left out."""


def _open(data: bytes) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise ParseError(
                "the PDF is encrypted with a password, so its text cannot be read; "
                "remove the password (e.g. `qpdf --decrypt --password=... in.pdf out.pdf`) and add it again"
            ) from exc
        raise ParseError(
            f"not a readable PDF ({str(exc).rstrip('.')}): the file is corrupt, truncated or not "
            "a PDF at all; re-export or re-download it and add it again"
        ) from exc


def _lines(textpage: pdfium.PdfTextPage, text: str) -> list[_Line]:
    """Split the page text into lines, each with the loose font box of its first character."""
    # Text indices equal char indices only when PDFium inserted or dropped nothing; otherwise
    # boxes could belong to other characters, so go without geometry.
    geometry = textpage.count_chars() == len(text)
    lines: list[_Line] = []
    offset = 0
    for match in [*_LINE_END.finditer(text), None]:
        end = match.start() if match is not None else len(text)
        line = text[offset:end]
        stripped = line.lstrip()
        if geometry and stripped:
            _, bottom, _, top = textpage.get_charbox(offset + len(line) - len(stripped), loose=True)
            lines.append(_Line(line, bottom, top) if top > bottom else _Line(line))
        else:
            lines.append(_Line(line))
        offset = match.end() if match is not None else len(text)
    return lines


def _gap(upper: _Line, lower: _Line) -> float | None:
    if upper.bottom is None or lower.top is None:
        return None
    return upper.bottom - lower.top


def _starts_paragraph(previous: _Line, line: _Line, usual_gap: float) -> bool:
    gap = _gap(previous, line)
    if gap is None:
        return False
    if line.bottom is not None and previous.top is not None and line.bottom > previous.top:
        return True  # moved up the page: a new column or a float
    low, high = sorted((previous.height, line.height))
    if low > 0 and high / low > _SIZE_CHANGE:
        return True
    return gap > usual_gap + _EXTRA_GAP * min(previous.height, line.height)


def _split_paragraphs(lines: list[_Line]) -> list[str]:
    """Group lines into paragraphs at blank lines and at geometric breaks."""
    gaps = [
        gap
        for upper, lower in itertools.pairwise(lines)
        if (gap := _gap(upper, lower)) is not None and gap > -0.5 * min(upper.height, lower.height)
    ]
    # Too few gaps say nothing about the page's spacing; assume single spacing (boxes touching).
    usual_gap = statistics.median(gaps) if len(gaps) >= _MIN_GAPS else 0.0
    paragraphs: list[list[str]] = [[]]
    previous: _Line | None = None
    for line in lines:
        if not line.text.strip():
            paragraphs.append([])
            previous = None
            continue
        if previous is not None and _starts_paragraph(previous, line, usual_gap):
            paragraphs.append([])
        paragraphs[-1].append(line.text)
        previous = line
    return ["\n".join(paragraph) for paragraph in paragraphs if paragraph]


def _has_objects(page: pdfium.PdfPage, *, images_only: bool) -> bool:
    kinds = [pdfium_c.FPDF_PAGEOBJ_IMAGE] if images_only else None
    return next(iter(page.get_objects(filter=kinds)), None) is not None


def _render(page: pdfium.PdfPage) -> Image.Image | None:
    """The page as a grayscale image for OCR, or ``None`` if it is empty or all one colour."""
    width, height = page.get_size()
    if width <= 0 or height <= 0:
        return None
    scale = RENDER_DPI / _POINTS_PER_INCH
    if width * height * scale * scale > MAX_IMAGE_PIXELS:
        # A huge page (a poster, a mis-sized scan) is rendered smaller rather than refused.
        scale = math.sqrt(MAX_IMAGE_PIXELS / (width * height))
    bitmap = page.render(scale=scale, grayscale=True)
    try:
        image: Image.Image = bitmap.to_pil().copy()  # to_pil shares the bitmap's buffer, which close() frees
    finally:
        bitmap.close()
    low, high = image.getextrema()
    if low == high:
        image.close()
        return None
    return image


def _read_page(document: pdfium.PdfDocument, index: int) -> tuple[list[str], Image.Image | None]:
    """The paragraphs of a page's text layer, or (for a scanned page) its rendering to OCR."""
    try:
        page = document[index]
    except pdfium.PdfiumError as exc:
        raise _DamagedPage(f"page {index + 1} could not be loaded ({str(exc).rstrip('.')}); it was left out") from exc
    try:
        try:
            textpage = page.get_textpage()
        except pdfium.PdfiumError as exc:
            raise _DamagedPage(
                f"the text of page {index + 1} could not be read ({str(exc).rstrip('.')}); it was left out"
            ) from exc
        try:
            # PDFium marks a line-end hyphen it cannot classify with STX; keep it as a hyphen.
            text = textpage.get_text_range().replace("\x02", "-")
            characters = sum(1 for char in text if not char.isspace())
            if characters >= MIN_TEXT_CHARS or not _has_objects(page, images_only=characters > 0):
                return _split_paragraphs(_lines(textpage, text)), None
        finally:
            textpage.close()
        return [], _render(page)
    finally:
        page.close()


def parse_pdf(data: bytes) -> list[Element]:
    """Parse a PDF into paragraph elements located by 1-based ``page``, OCR-ing scanned pages.

    Raises `ParseError` when the bytes are not a readable PDF, the PDF is password-protected,
    no page has any text (not even by OCR), or a scanned page needs OCR and tesseract is
    missing; `LimitExceeded` when OCR of a page takes too long.
    """
    elements: list[Element] = []
    damaged: list[str] = []
    with _PDFIUM_LOCK:
        document = _open(data)
        page_count = len(document)
    try:
        for index in range(page_count):
            with _PDFIUM_LOCK:
                try:
                    paragraphs, scan = _read_page(document, index)
                except _DamagedPage as damage:
                    damaged.append(str(damage))
                    warn(str(damage))
                    continue
            if scan is not None:
                with scan:
                    paragraphs = ocr_image(scan)
            for paragraph in paragraphs:
                element = make_element(paragraph, location=Location(page=index + 1), kind="paragraph")
                if element is not None:
                    elements.append(element)
    finally:
        with _PDFIUM_LOCK:
            document.close()
    if not elements and damaged:
        raise ParseError(
            f"no page of the PDF could be read ({damaged[0]}); the file is damaged: "
            "re-export it (e.g. print to PDF) and add it again"
        )
    if not elements:
        raise ParseError(
            f"the PDF has no text layer on any of its {page_count} page(s), and OCR found no text in "
            "them; check that it is not blank, or run it through an OCR tool (e.g. `ocrmypdf`) and add the result"
        )
    return elements
