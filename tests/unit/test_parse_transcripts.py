"""WebVTT, SRT and Whisper segments: one cue per element, exact times, markup dropped, bad timings named."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.errors import ParseError
from cairn.models import Element
from cairn.parse.salvage import collecting
from cairn.parse.transcripts import parse_srt, parse_vtt, whisper_segments

REAL = Path(__file__).parent.parent / "fixtures" / "real" / "formats"


def _cues(elements: list[Element]) -> list[tuple[str, float | None, float | None]]:
    return [(e.text, e.location.time_start, e.location.time_end) for e in elements]


def test_vtt_gives_one_cue_element_per_cue_with_times_in_seconds() -> None:
    """Each WebVTT cue is one ``cue`` element; hours are optional and milliseconds exact."""
    vtt = b"WEBVTT\n\n00:01.000 --> 00:02.500\nFirst cue\n\n01:02:03.004 --> 01:02:05.000\nSecond\ncue\n"

    elements = parse_vtt(vtt)

    assert _cues(elements) == [("First cue", 1.0, 2.5), ("Second\ncue", 3723.004, 3725.0)]
    assert {e.kind for e in elements} == {"cue"}


def test_vtt_voice_spans_become_speaker_prefixes() -> None:
    """``<v Alice>`` (with or without classes) becomes ``Alice: `` and ``</v>`` vanishes."""
    vtt = b"WEBVTT\n\n00:00.000 --> 00:01.000\n<v Alice>Hello there</v>\n<v.loud Bob Smith>Hi\n"

    assert parse_vtt(vtt)[0].text == "Alice: Hello there\nBob Smith: Hi"


def test_vtt_tags_entities_notes_styles_and_identifiers_are_not_text() -> None:
    """Cue tags, inline timestamps, NOTE/STYLE blocks, settings and identifiers are dropped; entities unescaped."""
    vtt = (
        b"WEBVTT - title\n\nSTYLE\n::cue { color: red }\n\nNOTE a comment that is not spoken\n\n"
        b"intro\n00:00.000 --> 00:01.000 align:start line:0\n"
        b"<i>Fish</i> &amp; <c.yellow>chips</c> <00:00:00.500>now &lt;3\n"
    )

    assert [e.text for e in parse_vtt(vtt)] == ["Fish & chips now <3"]


def test_vtt_lone_angle_brackets_stay_text() -> None:
    """A "<" that opens no tag (``x < y``) is text, not the start of a tag that swallows words."""
    vtt = b"WEBVTT\n\n00:00.000 --> 00:01.000\nx < y and z > w\n"

    assert parse_vtt(vtt)[0].text == "x < y and z > w"


@pytest.mark.parametrize(
    ("timing", "named"),
    [
        ("00:00:01.000 --> 00:00:61.000", "00:00:61.000"),
        ("00:00:0x.000 --> 00:00:02.000", "00:00:0x.000"),
        ("00:00:01,000 --> 00:00:02,000", "00:00:01,000"),
        ("00:00:05.000 --> 00:00:01.000", "ends (00:00:01.000) before it starts"),
        ("--> 00:00:01.000", "not a cue timing line"),
    ],
)
def test_vtt_bad_timing_leaves_out_the_cue_with_a_warning_naming_the_line(timing: str, named: str) -> None:
    """A malformed cue timing costs that cue, is reported with its line number, and the rest is kept."""
    vtt = f"WEBVTT\n\n00:00.000 --> 00:01.000\nfine\n\n{timing}\nbroken cue\n".encode()

    with collecting() as warnings:
        elements = parse_vtt(vtt)

    assert [e.text for e in elements] == ["fine"]
    assert len(warnings) == 1
    assert warnings[0].startswith("line 6: ")
    assert named in warnings[0]


def test_vtt_without_header_is_rejected() -> None:
    """A file not starting with WEBVTT is not WebVTT."""
    with pytest.raises(ParseError, match="WEBVTT"):
        parse_vtt(b"00:00.000 --> 00:01.000\nhello\n")


def test_srt_cues_with_bom_crlf_markup_and_ssa_overrides() -> None:
    """SRT cues become cue elements; BOM and CRLF are handled, <font>/<i> and {\\an8} dropped."""
    srt = (
        b'\xef\xbb\xbf1\r\n00:00:01,000 --> 00:00:02,000\r\n{\\an8}<font color="red">Hello</font>\r\n\r\n'
        b"2\r\n00:00:03,500 --> 00:00:05,000\r\n<i>Line one</i>\r\nLine two\r\n"
    )

    assert _cues(parse_srt(srt)) == [("Hello", 1.0, 2.0), ("Line one\nLine two", 3.5, 5.0)]


def test_srt_bad_timestamp_leaves_out_the_cue_with_a_warning_naming_the_line() -> None:
    """An SRT timing with 99 seconds costs its cue, with a warning naming its line."""
    srt = b"1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:03,000 --> 00:00:99,000\nbad\n"

    with collecting() as warnings:
        elements = parse_srt(srt)

    assert _cues(elements) == [("ok", 1.0, 2.0)]
    assert [w.split(" is ")[0] for w in warnings] == ["line 6: '00:00:99,000'"]


def test_text_that_is_not_srt_is_rejected() -> None:
    """Prose with no numbered cue at the start is not SubRip."""
    with pytest.raises(ParseError, match="SubRip"):
        parse_srt(b"Just some notes about subtitles.\nNothing timed here.\n")


def test_hostile_cue_markup_is_parsed_in_linear_time() -> None:
    """A cue line of 200,000 unmatched "<" (quadratic for a naive regex) parses quickly."""
    vtt = b"WEBVTT\n\n00:00.000 --> 00:01.000\n" + b"<" * 200_000 + b"x\n" + b"<a " * 60_000 + b">\n"

    began = time.perf_counter()
    elements = parse_vtt(vtt)

    assert time.perf_counter() - began < 3
    assert elements[0].text.startswith("<<<")


def test_whisper_segments_become_cues_with_speakers() -> None:
    """Whisper segments are cues with their start/end; a WhisperX speaker prefixes the text."""
    transcript = {
        "text": " Hello. Bye.",
        "segments": [
            {"id": 0, "start": 0.0, "end": 1.25, "text": " Hello."},
            {"id": 1, "start": 1.25, "end": 2, "text": " Bye.", "speaker": "SPEAKER_01"},
            {"id": 2, "start": 2, "end": 2.5, "text": "   "},
        ],
    }

    assert _cues(whisper_segments(transcript)) == [("Hello.", 0.0, 1.25), ("SPEAKER_01: Bye.", 1.25, 2.0)]


def test_whisper_transcript_without_segments_is_one_paragraph() -> None:
    """With an empty segment list, the transcript's full text is kept as one element."""
    elements = whisper_segments({"text": " The whole talk.", "segments": []})

    assert [(e.kind, e.text) for e in elements] == [("paragraph", "The whole talk.")]


@pytest.mark.parametrize(
    "segment",
    [
        {"start": "zero", "end": 1, "text": "x"},
        {"start": 2, "end": 1, "text": "x"},
        {"start": -1, "end": 1, "text": "x"},
        {"start": True, "end": 1, "text": "x"},
        {"start": 0, "end": 10**400, "text": "x"},
        {"start": 0, "end": 1, "text": ["x"]},
    ],
)
def test_malformed_whisper_segment_is_a_parse_error_naming_it(segment: dict[str, object]) -> None:
    """Non-numeric, negative, reversed or huge times and non-string text name the segment."""
    with pytest.raises(ParseError, match="segment 1"):
        whisper_segments({"segments": [{"start": 0, "end": 1, "text": "ok"}, segment]})


_words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
_cue_lists = st.lists(
    st.tuples(
        st.lists(_words, min_size=1, max_size=6).map(" ".join),
        st.integers(min_value=0, max_value=5_000),  # gap before the cue, ms
        st.integers(min_value=0, max_value=9_000),  # duration, ms
    ),
    min_size=1,
    max_size=25,
    unique_by=lambda cue: cue[0],
)


def _stamp(millis: int, separator: str) -> str:
    hours, rest = divmod(millis, 3_600_000)
    return f"{hours:02d}:{rest // 60_000:02d}:{rest % 60_000 // 1000:02d}{separator}{rest % 1000:03d}"


def _timeline(cues: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    clock, timed = 0, []
    for text, gap, duration in cues:
        clock += gap
        timed.append((text, clock, clock + duration))
    return timed


@settings(max_examples=60, deadline=None)
@given(_cue_lists)
def test_generated_cues_round_trip_through_vtt_and_srt(cues: list[tuple[str, int, int]]) -> None:
    """For any cue list, VTT and SRT each give every cue's text exactly once with its exact times, in order."""
    timed = _timeline(cues)
    vtt = "WEBVTT\n\n" + "".join(f"{_stamp(s, '.')} --> {_stamp(e, '.')}\n{t}\n\n" for t, s, e in timed)
    srt = "".join(f"{n}\n{_stamp(s, ',')} --> {_stamp(e, ',')}\n{t}\n\n" for n, (t, s, e) in enumerate(timed, 1))
    expected = [(text, start / 1000, end / 1000) for text, start, end in timed]

    for elements in (parse_vtt(vtt.encode()), parse_srt(srt.encode())):
        got = _cues(elements)
        assert got == expected
        texts = [text for text, _, _ in got]
        assert all(texts.count(text) == 1 for text, _, _ in expected)
        starts = [start or 0.0 for _, start, _ in got]
        assert starts == sorted(starts)
        assert all(start is not None and end is not None and end >= start for _, start, end in got)


def test_real_vtt_and_srt_fixtures_keep_every_cue() -> None:
    """The real-text fixtures give one element per timing line, times non-decreasing."""
    for name, parse in (("man-db-manual.vtt", parse_vtt), ("users-and-groups.srt", parse_srt)):
        data = (REAL / name).read_bytes()
        elements = parse(data)
        starts = [e.location.time_start or 0.0 for e in elements]

        assert len(elements) == len(re.findall(rb"-->", data)), name
        assert starts == sorted(starts), name


@pytest.mark.parametrize(("name", "parse"), [("man-db-manual.vtt", parse_vtt), ("users-and-groups.srt", parse_srt)])
def test_fixture_phrase_occurs_in_parsed_text(name: str, parse: Callable[[bytes], list[Element]]) -> None:
    """phrases-messages.json names a phrase that the parsed text of each fixture contains verbatim."""
    phrase = json.loads((REAL / "phrases-messages.json").read_text())[name]
    text = " ".join(" ".join(e.text for e in parse((REAL / name).read_bytes())).split())

    assert phrase in text
