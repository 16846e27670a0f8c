"""Render known text into images with Pillow and DejaVu fonts, for OCR tests.

Text is drawn black on white at a size Tesseract reads reliably (about 300 dpi for 10 pt type),
on canvases about 1000 px wide so OCR stays fast. Paragraphs are separated by a blank line's
height, which Tesseract's layout analysis sees as a paragraph break.
"""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont

__all__ = ["FONT", "encode", "render_paragraphs"]

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"
_MARGIN = 40


def render_paragraphs(paragraphs: list[list[str]], *, width: int = 1000, size: int = 30) -> Image.Image:
    """Draw each paragraph's lines top-down with a blank line between paragraphs; return an 'L' image."""
    font = ImageFont.truetype(FONT, size)
    line_height = int(size * 1.5)
    lines = sum(len(paragraph) for paragraph in paragraphs) + len(paragraphs) - 1
    image = Image.new("L", (width, 2 * _MARGIN + lines * line_height), 255)
    draw = ImageDraw.Draw(image)
    y = _MARGIN
    for paragraph in paragraphs:
        for line in paragraph:
            draw.text((_MARGIN, y), line, font=font, fill=0)
            y += line_height
        y += line_height
    return image


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    """The bytes of ``image`` saved in format ``fmt`` (PNG, JPEG, TIFF, PDF...)."""
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()
