"""OCR of images (PNG, JPEG, TIFF) with Tesseract, one element per paragraph Tesseract finds.

    parse_image(data) -> list[Element]       # a TIFF's frames are pages: location.page = 1, 2, ...
    ocr_image(image) -> list[str]            # paragraph texts of one decoded image (used for PDFs)

Images are opened with Pillow restricted to these three formats, and their declared size is
checked against `MAX_IMAGE_PIXELS` before any pixel is decoded, so a small file claiming a huge
canvas (a decompression bomb) costs nothing. Each image is converted to grayscale (transparency
flattened onto white, EXIF rotation applied) and read by the ``tesseract`` program through
pytesseract, with a `OCR_TIMEOUT_S` limit per image. Tesseract's layout analysis groups words into
blocks, paragraphs and lines; an element is one paragraph, its lines joined by ``\\n``. Words
Tesseract marks as non-text (confidence < 0) or empty are dropped, as are paragraphs without a
single letter or digit (rules, borders, speckle).
"""

from __future__ import annotations

import collections
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytesseract  # type: ignore[import-untyped]
from PIL import Image, ImageOps

from cairn.errors import LimitExceeded, ParseError
from cairn.models import Element, Location

from .text import make_element

__all__ = ["MAX_IMAGE_FRAMES", "MAX_IMAGE_PIXELS", "OCR_LANGUAGE", "OCR_TIMEOUT_S", "ocr_image", "parse_image"]

MAX_IMAGE_PIXELS = 60_000_000
MAX_IMAGE_FRAMES = 1_000
OCR_TIMEOUT_S = 120
OCR_LANGUAGE = "eng"

_FORMATS = ["PNG", "JPEG", "TIFF"]
_WORD_LEVEL = 5
_NOT_INSTALLED = (
    "OCR needs the tesseract program, which is not installed; "
    "run `make install` (it installs the Debian package tesseract-ocr)"
)
# Tesseract spreads one image over OpenMP threads, which on a few cores costs far more than it
# saves (a page takes 3.7 s instead of 0.85 s on two cores); cairn parallelises across files
# instead. pytesseract passes its module's ``environ`` to the tesseract process, so the limit is
# set there, not in os.environ, where it would also throttle torch. A limit the user set wins.
pytesseract.pytesseract.environ = collections.ChainMap(os.environ, {"OMP_THREAD_LIMIT": "1"})

# What Pillow raises on damaged files, besides its own UnidentifiedImageError (an OSError).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError)


def check_pixels(width: int, height: int) -> None:
    """Raise `LimitExceeded` if a ``width``×``height`` image is over `MAX_IMAGE_PIXELS`."""
    if width * height > MAX_IMAGE_PIXELS:
        raise LimitExceeded(
            f"the image is {width}×{height} pixels, over the limit of {MAX_IMAGE_PIXELS:,} "
            "(a decompression bomb or a very large scan); scale it down and add it again"
        )


@contextmanager
def _open(data: bytes) -> Iterator[Image.Image]:
    try:
        image = Image.open(io.BytesIO(data), formats=_FORMATS)
    except Image.DecompressionBombError as exc:
        raise LimitExceeded(
            f"the image is larger than the limit of {MAX_IMAGE_PIXELS:,} pixels (a decompression bomb "
            "or a very large scan); scale it down and add it again"
        ) from exc
    except _DECODE_ERRORS as exc:
        raise ParseError(
            f"not a readable PNG, JPEG or TIFF image ({exc}); the file is damaged or of another "
            "format: re-export or re-download it and add it again"
        ) from exc
    with image:
        check_pixels(*image.size)
        yield image


def _grayscale(image: Image.Image) -> Image.Image:
    """Decode ``image`` into an upright 8-bit grayscale copy, transparent areas on white."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    elif image.mode == "I" or image.mode.startswith("I;16"):
        # 16-bit scans: map 0..65535 onto 0..255 (a plain conversion would clip to white).
        image = image.convert("I").point(lambda value: value * (1 / 256))
    upright = ImageOps.exif_transpose(image)
    return upright.convert("L")


def ocr_image(image: Image.Image) -> list[str]:
    """Read the paragraphs of text in a decoded image, in Tesseract's reading order.

    Raises:
        ParseError: the tesseract program is missing or failed on the image.
        LimitExceeded: OCR took longer than `OCR_TIMEOUT_S`.
    """
    gray = image if image.mode == "L" else image.convert("L")
    try:
        data = pytesseract.image_to_data(
            gray, lang=OCR_LANGUAGE, output_type=pytesseract.Output.DICT, timeout=OCR_TIMEOUT_S
        )
    except pytesseract.TesseractNotFoundError as exc:
        raise ParseError(_NOT_INSTALLED) from exc
    except pytesseract.TesseractError as exc:
        raise ParseError(
            f"OCR failed on the image (tesseract: {str(exc.message).strip() or exc.status}); "
            "check that the image is not damaged, or convert it to PNG and add it again"
        ) from exc
    except RuntimeError as exc:
        if "timeout" not in str(exc).lower():
            raise
        raise LimitExceeded(
            f"OCR of the image took longer than {OCR_TIMEOUT_S} s; split the scan into smaller images "
            "or lower its resolution (300 dpi is enough) and add it again"
        ) from exc
    return _paragraphs(data)


def _paragraphs(data: dict[str, list[object]]) -> list[str]:
    """Group Tesseract's words into paragraphs (block, paragraph) and lines, in reading order."""
    paragraphs: dict[tuple[int, int], dict[int, list[str]]] = {}
    for index, word in enumerate(data["text"]):
        text = str(word).strip()
        if int(str(data["level"][index])) != _WORD_LEVEL or not text or float(str(data["conf"][index])) < 0:
            continue
        key = (int(str(data["block_num"][index])), int(str(data["par_num"][index])))
        line = int(str(data["line_num"][index]))
        paragraphs.setdefault(key, {}).setdefault(line, []).append(text)
    texts: list[str] = []
    for lines in paragraphs.values():
        text = "\n".join(" ".join(words) for words in lines.values())
        if any(char.isalnum() for char in text):
            texts.append(text)
    return texts


def _frames(image: Image.Image) -> Iterator[tuple[int | None, Image.Image]]:
    """Each page of a multi-page TIFF with its 1-based number; any other image once, unnumbered."""
    count = getattr(image, "n_frames", 1) if image.format == "TIFF" else 1
    if count > MAX_IMAGE_FRAMES:
        raise LimitExceeded(
            f"the TIFF has {count} pages, over the limit of {MAX_IMAGE_FRAMES}; split it into smaller files"
        )
    for index in range(count):
        if count > 1:
            image.seek(index)
            check_pixels(*image.size)
        try:
            gray = _grayscale(image)
        except _DECODE_ERRORS as exc:
            where = f"page {index + 1} of the image" if count > 1 else "the image"
            raise ParseError(
                f"{where} could not be decoded ({exc}); the file is truncated or damaged: "
                "re-export or re-download it and add it again"
            ) from exc
        yield (index + 1 if count > 1 else None), gray


def parse_image(data: bytes) -> list[Element]:
    """OCR a PNG, JPEG or TIFF image into paragraph elements (``page`` set for multi-page TIFFs).

    Raises:
        LimitExceeded: the image is over `MAX_IMAGE_PIXELS` (checked before decoding), has more
            than `MAX_IMAGE_FRAMES` pages, or OCR took longer than `OCR_TIMEOUT_S`.
        ParseError: the bytes are not a readable image, or tesseract is missing.
    """
    elements: list[Element] = []
    with _open(data) as image:
        for page, gray in _frames(image):
            for paragraph in ocr_image(gray):
                element = make_element(paragraph, location=Location(page=page), kind="paragraph")
                if element is not None:
                    elements.append(element)
            gray.close()
    return elements
