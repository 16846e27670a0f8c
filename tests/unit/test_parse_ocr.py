"""OCR: images of known text read back, TIFF pages, image bombs refused cheaply, scanned PDFs."""

from __future__ import annotations

import io
import struct
import time
import zlib

import pypdfium2 as pdfium
import pytest
from image_fixture import encode, render_paragraphs
from pdf_fixture import build_pdf
from PIL import Image, ImageFile

from cairn.errors import LimitExceeded, ParseError
from cairn.parse import ocr, pdf
from cairn.parse.ocr import MAX_IMAGE_PIXELS, ocr_image, parse_image
from cairn.parse.pdf import parse_pdf

FOX = ["The quick brown fox jumps over", "the lazy dog near the riverbank."]
INVOICE = ["Invoice number 4711 is due", "on Friday, the twelfth of March."]
ZEBRA = ["Second page: zebras graze quietly."]


@pytest.fixture(scope="module")
def text_image() -> Image.Image:
    return render_paragraphs([FOX, INVOICE])


def _words(text: str) -> set[str]:
    return {word.strip(".,:;").lower() for word in text.split()}


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_image_text_is_read_back_one_element_per_paragraph(text_image: Image.Image, fmt: str) -> None:
    """OCR recovers the words of each paragraph, one paragraph element each, with no page number."""
    elements = parse_image(encode(text_image, fmt, quality=90) if fmt == "JPEG" else encode(text_image, fmt))

    assert len(elements) == 2
    assert {"quick", "fox", "riverbank"} <= _words(elements[0].text)
    assert {"invoice", "4711", "friday", "march"} <= _words(elements[1].text)
    assert elements[0].text.count("\n") == 1  # two lines joined by a newline
    assert all(e.kind == "paragraph" and e.location.page is None and not e.metadata for e in elements)


def test_tiff_pages_are_numbered_from_one(text_image: Image.Image) -> None:
    """Each frame of a multi-page TIFF is a page; its paragraphs carry that 1-based page number."""
    second = render_paragraphs([ZEBRA])
    tiff = encode(text_image, "TIFF", save_all=True, append_images=[second], compression="tiff_deflate")

    elements = parse_image(tiff)

    assert [e.location.page for e in elements] == [1, 1, 2]
    assert {"zebras", "graze"} <= _words(elements[2].text)
    assert elements[2].location.label == "p. 2"


def test_transparent_background_is_read_as_white() -> None:
    """Black text on a transparent canvas is flattened onto white before OCR, not onto black."""
    mask = render_paragraphs([FOX]).point(lambda value: 255 - value)
    rgba = Image.new("RGBA", mask.size, (0, 0, 0, 0))
    rgba.putalpha(mask)

    elements = parse_image(encode(rgba, "PNG"))

    assert {"quick", "fox"} <= _words(" ".join(e.text for e in elements))


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width``×``height`` 1-bit pixels; its data covers a few rows."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" + b"\xff" * ((width + 7) // 8))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("width", "height"), [(8_000, 8_000), (20_000, 20_000), (1, MAX_IMAGE_PIXELS + 1)])
def test_image_bomb_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch, width: int, height: int) -> None:
    """An image whose header claims more than MAX_IMAGE_PIXELS raises LimitExceeded without decoding a pixel."""

    def refuse_to_decode(self: ImageFile.ImageFile) -> None:
        raise AssertionError("the image was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse_to_decode)
    bomb = _png_claiming(width, height)
    assert len(bomb) < 4_000

    started = time.perf_counter()
    with pytest.raises(LimitExceeded, match="scale it down"):
        parse_image(bomb)

    assert time.perf_counter() - started < 1.0


def test_truncated_png_raises_parse_error(text_image: Image.Image) -> None:
    """A PNG cut in half is a ParseError saying it is truncated or damaged, with the cause chained."""
    png = encode(text_image, "PNG")

    with pytest.raises(ParseError, match="truncated or damaged") as caught:
        parse_image(png[: len(png) // 2])

    assert isinstance(caught.value.__cause__, OSError)
    assert not isinstance(caught.value, LimitExceeded)


@pytest.mark.parametrize("data", [b"GIF89a" + bytes(64), b"\x89PNG\r\n\x1a\n" + bytes(30), b"not an image at all"])
def test_unreadable_or_other_format_raises_parse_error(data: bytes) -> None:
    """Bytes that are not a PNG, JPEG or TIFF Pillow can open raise ParseError naming the formats."""
    with pytest.raises(ParseError, match="PNG, JPEG or TIFF"):
        parse_image(data)


def test_missing_tesseract_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, text_image: Image.Image) -> None:
    """Without the tesseract program, OCR fails with a ParseError that says to run `make install`."""
    monkeypatch.setattr(ocr.pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")

    with pytest.raises(ParseError, match="tesseract-ocr") as caught:
        ocr_image(text_image)

    assert "make install" in str(caught.value)


def test_ocr_timeout_is_limit_exceeded(monkeypatch: pytest.MonkeyPatch, text_image: Image.Image) -> None:
    """OCR that runs past OCR_TIMEOUT_S is stopped and reported as LimitExceeded."""
    monkeypatch.setattr(ocr, "OCR_TIMEOUT_S", 0.001)

    with pytest.raises(LimitExceeded, match="longer than"):
        ocr_image(text_image)


def _image_pdf(*images: Image.Image) -> bytes:
    """A PDF with one image-only page per image (no text layer), as a scanner makes them."""
    return encode(images[0], "PDF", save_all=True, append_images=list(images[1:]), resolution=300)


def _concatenate(*documents: bytes) -> bytes:
    merged = pdfium.PdfDocument.new()
    for data in documents:
        merged.import_pages(pdfium.PdfDocument(data))
    out = io.BytesIO()
    merged.save(out)
    return out.getvalue()


def test_scanned_pdf_pages_are_read_by_ocr_with_page_numbers(text_image: Image.Image) -> None:
    """Image-only PDF pages are rendered and OCR'd; paragraphs carry their page, kind 'paragraph'."""
    scanned = _image_pdf(text_image, render_paragraphs([ZEBRA]))

    elements = parse_pdf(scanned)

    assert [e.location.page for e in elements] == [1, 1, 2]
    assert {"quick", "fox"} <= _words(elements[0].text)
    assert {"invoice", "4711"} <= _words(elements[1].text)
    assert {"zebras", "graze"} <= _words(elements[2].text)
    assert all(e.kind == "paragraph" and not e.metadata for e in elements)


def test_mixed_pdf_keeps_text_layer_and_ocrs_the_scan_and_skips_blank_pages() -> None:
    """A text page is read from its text layer, a scanned page by OCR, a blank scanned page yields nothing."""
    text_page = build_pdf([[["Alpha is typeset on page one."]]])
    blank = Image.new("L", (600, 400), 255)
    mixed = _concatenate(text_page, _image_pdf(render_paragraphs([ZEBRA]), blank))

    elements = parse_pdf(mixed)

    assert elements[0].text == "Alpha is typeset on page one."
    assert [e.location.page for e in elements] == [1, 2]
    assert {"zebras", "graze"} <= _words(elements[1].text)


def test_huge_pdf_page_is_rendered_within_the_pixel_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A page too large to render at 300 dpi within MAX_IMAGE_PIXELS is rendered smaller, not refused."""
    seen: list[tuple[int, int]] = []

    def record_size(image: Image.Image) -> list[str]:
        seen.append(image.size)
        return ["recorded"]

    monkeypatch.setattr(pdf, "MAX_IMAGE_PIXELS", 500_000)
    monkeypatch.setattr(pdf, "ocr_image", record_size)

    elements = parse_pdf(_image_pdf(render_paragraphs([FOX], width=1400)))

    assert [e.text for e in elements] == ["recorded"]
    ((width, height),) = seen
    assert width * height <= 500_000
    assert width > 500


def test_blank_scanned_pdf_still_says_no_text() -> None:
    """A PDF of blank scans raises ParseError saying neither the text layer nor OCR found text."""
    blank = Image.new("L", (600, 400), 255)
    speck = Image.new("L", (600, 400), 255)
    speck.putpixel((10, 10), 0)

    with pytest.raises(ParseError, match="no text layer") as caught:
        parse_pdf(_image_pdf(blank, speck))

    assert "OCR found no text" in str(caught.value)


def test_tesseract_runs_single_threaded_unless_the_user_says_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tesseract process gets OMP_THREAD_LIMIT=1 (OpenMP slows it down), but a user's own setting wins."""
    monkeypatch.delenv("OMP_THREAD_LIMIT", raising=False)
    assert ocr.pytesseract.pytesseract.subprocess_args()["env"]["OMP_THREAD_LIMIT"] == "1"

    monkeypatch.setenv("OMP_THREAD_LIMIT", "4")
    assert ocr.pytesseract.pytesseract.subprocess_args()["env"]["OMP_THREAD_LIMIT"] == "4"
