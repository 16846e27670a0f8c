"""Subtitles and transcripts: WebVTT, SubRip (SRT) and Whisper-style JSON segments.

Every cue becomes one element of kind ``cue`` whose location holds ``time_start`` and
``time_end`` in seconds. Markup is dropped: cue tags (``<i>``, ``<c.loud>``, ``<00:01.000>``,
``<font color=...>``) and SSA overrides (``{\\an8}``); a WebVTT voice span ``<v Alice>`` becomes
the prefix ``Alice: ``, and character references (``&amp;``) are unescaped.

webvtt-py reads the files. It skips a cue whose timing it cannot read, so every cue is checked
here first: a cue whose timing line is missing, holds a bad timestamp or runs backwards is left
out with a warning that names its line (`cairn.parse.salvage`), instead of silently vanishing
from the index or failing the whole file; the other cues are kept.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Mapping, Sequence

from webvtt import WebVTT
from webvtt.errors import MalformedCaptionError, MalformedFileError

from cairn.errors import ParseError
from cairn.models import Element, Location

from .salvage import warn
from .text import clean_text, decode_bytes, make_element, normalize_newlines

__all__ = ["is_whisper_segment", "is_whisper_transcript", "parse_srt", "parse_vtt", "segment_cue", "whisper_segments"]

_TIMING_LINE = re.compile(r"^\s*(\S+?)\s*-->\s*(\S+)")
# webvtt-py's own forms: WebVTT allows the hours to be left out; SRT separates milliseconds
# with a comma (many files use a dot).
_VTT_STAMP = re.compile(r"(?:(\d{1,10}):)?(\d{1,2}):(\d{1,2})\.(\d{1,3})")
_SRT_STAMP = re.compile(r"(\d{1,10}):(\d{1,2}):(\d{1,2})[,.](\d{1,3})")
_SSA_OVERRIDE = re.compile(r"\{\\[^{}]*\}")
_VOICE_TAG = re.compile(r"v(?:\.[^\s>]*)?\s+(.+)", re.DOTALL)
_INDEX_LINE = re.compile(r"\s*\d+\s*")
_VTT_FORM = "[hh:]mm:ss.ttt --> [hh:]mm:ss.ttt"
_SRT_FORM = "hh:mm:ss,ttt --> hh:mm:ss,ttt"


def _stamp_seconds(stamp: str, pattern: re.Pattern[str]) -> float | None:
    match = pattern.fullmatch(stamp)
    if match is None:
        return None
    hours, minutes, seconds = (int(group or 0) for group in match.groups()[:3])
    if minutes > 59 or seconds > 59:
        return None
    return hours * 3600 + minutes * 60 + seconds + int(match.group(4).ljust(3, "0")) / 1000


def _timing_problem(number: int, line: str, pattern: re.Pattern[str], form: str) -> str | None:
    """What is wrong with cue timing line ``number`` (naming it), or None when it is well formed."""
    match = _TIMING_LINE.match(line)
    if match is None:
        return f"line {number}: {line.strip()[:60]!r} is not a cue timing line (expected {form})"
    start, end = match.group(1), match.group(2)
    times: list[float] = []
    for stamp in (start, end):
        seconds = _stamp_seconds(stamp, pattern)
        if seconds is None:
            return f"line {number}: {stamp[:60]!r} is not a valid cue timestamp (expected {form})"
        times.append(seconds)
    if times[1] < times[0]:
        return f"line {number}: the cue ends ({end}) before it starts ({start})"
    return None


def _blocks(lines: Sequence[str]) -> list[tuple[int, int]]:
    """The runs of non-blank lines, as ``(first, past_last)`` indices into ``lines``."""
    blocks: list[tuple[int, int]] = []
    start: int | None = None
    for index, line in enumerate([*lines, ""]):
        if line.strip() and start is None:
            start = index
        elif not line.strip() and start is not None:
            blocks.append((start, index))
            start = None
    return blocks


def _vtt_problem(lines: Sequence[str], start: int, end: int) -> str | None:
    """What makes the WebVTT block ``lines[start:end]`` an unreadable cue, if anything."""
    block = lines[start:end]
    if start == 0 or block[0].startswith(("NOTE", "STYLE", "REGION")):  # the header, or not a cue
        return None
    if not any("-->" in line for line in block[:2]):
        return f"line {start + 1}: the cue {block[0].strip()[:60]!r} has no timing line"
    for offset, line in enumerate(block):
        if "-->" in line:  # WebVTT forbids "-->" anywhere but in cue timing lines
            problem = _timing_problem(start + offset + 1, line, _VTT_STAMP, _VTT_FORM)
            if problem is not None:
                return problem
    return None


def _srt_problem(lines: Sequence[str], start: int, end: int) -> str | None:
    """What makes the SubRip block ``lines[start:end]`` an unreadable cue, if anything.

    A block that starts with neither a cue number nor a timing line continues the cue before it
    (sloppy files put blank lines inside cue text): it is left alone.
    """
    block = lines[start:end]
    if _INDEX_LINE.fullmatch(block[0]):
        if len(block) < 2 or "-->" not in block[1]:
            return f"line {start + 1}: cue {block[0].strip()} has no timing line"
        return _timing_problem(start + 2, block[1], _SRT_STAMP, _SRT_FORM)
    if "-->" in block[0]:
        return _timing_problem(start + 1, block[0], _SRT_STAMP, _SRT_FORM)
    return None


def _without_bad_cues(lines: list[str], problem_of: Callable[[Sequence[str], int, int], str | None]) -> list[str]:
    """``lines`` with each unreadable cue blanked out (and a warning naming its line); line count kept.

    webvtt-py would drop a cue whose timing it cannot read without a word (or, in SubRip, merge
    it into the cue before), and accepts times that run backwards.
    """
    kept = list(lines)
    for start, end in _blocks(lines):
        problem = problem_of(lines, start, end)
        if problem is not None:
            warn(f"{problem}; the cue was left out")
            kept[start:end] = [""] * (end - start)
    return kept


def _cue_markup_to_text(raw: str) -> str:
    """Drop cue tags (which never span lines); a voice span's opening tag becomes ``Name: ``."""
    return html.unescape(_SSA_OVERRIDE.sub("", "\n".join(_strip_tags(line) for line in raw.split("\n"))))


def _strip_tags(line: str) -> str:
    """One line without its tags, in one linear pass (a regex would rescan after each lone "<").

    A tag opens with "<" and a letter, digit or "/" (``<i>``, ``<00:01.000>``, ``</v>``); any
    other "<" is text, as in ``x < y``.
    """
    pieces: list[str] = []
    position, close = 0, -1
    while (start := line.find("<", position)) >= 0:
        if close < start:
            close = line.find(">", start + 1)
        if close < 0:
            break
        opener = line[start + 1 : start + 2]
        if not (opener.isalnum() or opener == "/"):
            pieces.append(line[position : start + 1])
            position = start + 1
            continue
        pieces.append(line[position:start])
        voice = _VOICE_TAG.fullmatch(line[start + 1 : close])
        if voice is not None:
            pieces.append(f"{voice.group(1).strip()}: ")
        position = close + 1
    pieces.append(line[position:])
    return "".join(pieces)


def _cue(text: str, start: float | None, end: float | None) -> Element | None:
    return make_element(text, location=Location(time_start=start, time_end=end), kind="cue")


def _captions(text: str, form: str) -> list[Element]:
    try:
        captions = WebVTT.from_buffer([text], format=form).captions
    except (MalformedFileError, MalformedCaptionError) as exc:
        raise ParseError(f"could not read the cues ({exc}); check the file's cue blocks") from exc
    elements: list[Element] = []
    for caption in captions:
        element = _cue(
            _cue_markup_to_text(caption.raw_text),
            caption.start_time.in_milliseconds() / 1000,
            caption.end_time.in_milliseconds() / 1000,
        )
        if element is not None:
            elements.append(element)
    return elements


def parse_vtt(data: bytes) -> list[Element]:
    """Parse a WebVTT file: one ``cue`` element per cue, in file order.

    A cue whose timing line is missing, invalid or runs backwards is left out with a warning.

    Raises:
        ParseError: the file does not start with ``WEBVTT``.
    """
    text = clean_text(normalize_newlines(decode_bytes(data)))
    lines = text.split("\n")
    if not lines[0].startswith("WEBVTT"):
        raise ParseError(
            "the file does not start with 'WEBVTT', so it is not a WebVTT subtitle file; "
            "add the WEBVTT header line or give the file the extension of its real format"
        )
    return _captions("\n".join(_without_bad_cues(lines, _vtt_problem)), "vtt")


def parse_srt(data: bytes) -> list[Element]:
    """Parse a SubRip (.srt) file: one ``cue`` element per numbered cue, in file order.

    A cue whose timing line is missing, invalid or runs backwards is left out with a warning.

    Raises:
        ParseError: the file does not begin with a cue (a number line, then a timing line).
    """
    lines = clean_text(normalize_newlines(decode_bytes(data))).split("\n")
    salvaged = _without_bad_cues(lines, _srt_problem)
    if any(line.strip() for line in lines) and not any(line.strip() for line in salvaged):
        return []  # every cue was unreadable: the warnings say why
    lines, first = salvaged, 0
    while first < len(lines) and not lines[first].strip():
        first += 1
    body = [line.strip() if _INDEX_LINE.fullmatch(line) else line for line in lines[first:]]
    if len(body) < 2 or not _INDEX_LINE.fullmatch(body[0]) or "-->" not in body[1]:
        raise ParseError(
            "the file does not begin with a SubRip cue (a cue number line, then a "
            "'00:00:01,000 --> 00:00:02,000' line); check that it is an .srt subtitle file"
        )
    return _captions("\n".join(body), "srt")


def _seconds(value: object) -> float | None:
    """A finite, non-negative number of seconds, or None for anything else (bool included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = float(value)
    except OverflowError:  # an integer beyond any float
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def is_whisper_segment(value: object) -> bool:
    """Whether ``value`` looks like one Whisper segment: a mapping with ``start``, ``end``, ``text``."""
    return isinstance(value, Mapping) and {"start", "end", "text"} <= value.keys()


def is_whisper_transcript(value: object) -> bool:
    """Whether ``value`` is a Whisper transcript: a mapping whose ``segments`` list holds segments.

    whisper.cpp's JSON (a ``transcription`` list of segments with ``offsets`` in milliseconds)
    counts too.
    """
    if not isinstance(value, Mapping):
        return False
    segments = value.get("segments")
    if isinstance(segments, list):
        return all(is_whisper_segment(segment) for segment in segments) and (
            bool(segments) or isinstance(value.get("text"), str)
        )
    transcription = value.get("transcription")
    return (
        isinstance(transcription, list)
        and bool(transcription)
        and all(isinstance(item, Mapping) and {"offsets", "text"} <= item.keys() for item in transcription)
    )


def segment_cue(segment: Mapping[str, object], *, where: str) -> Element | None:
    """One Whisper segment as a ``cue`` element (None if its text is empty).

    A ``speaker`` (as WhisperX adds) prefixes the text. ``where`` names the segment in errors.

    Raises:
        ParseError: ``start``/``end`` are not non-negative numbers, ``end`` precedes ``start``,
            or ``text`` is not a string.
    """
    offsets = segment.get("offsets")
    if isinstance(offsets, Mapping):  # whisper.cpp: milliseconds
        raw_start, raw_end, scale = offsets.get("from"), offsets.get("to"), 1000
    else:
        raw_start, raw_end, scale = segment.get("start"), segment.get("end"), 1
    start, end = _seconds(raw_start), _seconds(raw_end)
    if start is None or end is None or end < start:
        raise ParseError(
            f"{where} has invalid times (start {str(raw_start)[:40]!r}, end {str(raw_end)[:40]!r}); "
            "times must be numbers >= 0 with the end not before the start: fix or remove the segment"
        )
    start, end = start / scale, end / scale
    text = segment.get("text")
    if text is None:
        return None
    if not isinstance(text, str):
        raise ParseError(f"{where} has a {type(text).__name__} as its text; segment text must be a string")
    speaker = segment.get("speaker")
    if isinstance(speaker, str) and speaker.strip():
        text = f"{speaker.strip()}: {text.strip()}"
    return _cue(text, start, end)


def whisper_segments(transcript: Mapping[str, object]) -> list[Element]:
    """The cues of a Whisper-style transcript (``{"text": ..., "segments": [{start, end, text}]}``).

    A transcript without segments yields its whole ``text`` as one ``paragraph`` element.

    Raises:
        ParseError: a segment is malformed (see `segment_cue`).
    """
    segments = transcript.get("segments")
    if not isinstance(segments, Sequence) or isinstance(segments, str):
        segments = transcript.get("transcription")
    elements: list[Element] = []
    if isinstance(segments, Sequence) and not isinstance(segments, str):
        for index, segment in enumerate(segments):
            if not isinstance(segment, Mapping):
                raise ParseError(f"segment {index} is a {type(segment).__name__}, not an object; fix the transcript")
            element = segment_cue(segment, where=f"segment {index}")
            if element is not None:
                elements.append(element)
    text = transcript.get("text")
    if not elements and isinstance(text, str):
        element = make_element(text, location=Location(), kind="paragraph")
        return [element] if element is not None else []
    return elements
