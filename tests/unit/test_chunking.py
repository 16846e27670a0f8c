import itertools
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cairn.chunking import chunk_elements, chunk_id, embedding_input
from cairn.models import Chunk, Element, Location

WORDS = re.compile(r"\S+")


def _chunks(elements, embedder, max_tokens=64, overlap=8):  # type: ignore[no-untyped-def]
    return chunk_elements(
        elements, doc_id="d0c", version=1, tokenizer=embedder, max_tokens=max_tokens, overlap_tokens=overlap
    )


def _para(text: str, heading: tuple[str, ...] = (), line: int | None = None) -> Element:
    return Element(text=text, location=Location(heading_path=heading, line_start=line, line_end=line))


def test_chunks_never_exceed_the_model_limit(embedder) -> None:  # type: ignore[no-untyped-def]
    """Every chunk, special tokens included, fits in max_tokens, even from one huge paragraph."""
    huge = " ".join(f"Sentence number {i} talks about drones and batteries." for i in range(200))
    chunks = _chunks([_para(huge)], embedder)
    assert len(chunks) > 10
    counts = embedder.count_tokens([c.text for c in chunks])
    assert max(counts) + embedder.special_tokens <= 64
    assert [c.token_count for c in chunks] == counts


def test_sentence_without_breaks_is_cut_at_token_boundaries(embedder) -> None:  # type: ignore[no-untyped-def]
    """A run of words with no sentence end is still split to fit, losing no word."""
    words = [f"token{i}" for i in range(400)]
    chunks = _chunks([_para(" ".join(words))], embedder, overlap=0)
    assert max(embedder.count_tokens([c.text for c in chunks])) + 2 <= 64
    assert " ".join(c.text for c in chunks).split() == words


def test_chunks_do_not_cross_headings(embedder) -> None:  # type: ignore[no-untyped-def]
    """Text under different headings never shares a chunk; each chunk keeps its heading path."""
    elements = [_para("Leave is generous.", ("Leave",)), _para("Expenses need receipts.", ("Expenses",))]
    chunks = _chunks(elements, embedder)
    assert [c.location.heading_path for c in chunks] == [("Leave",), ("Expenses",)]


def test_small_paragraphs_are_packed_together_with_merged_line_range(embedder) -> None:  # type: ignore[no-untyped-def]
    """Short paragraphs of one section share a chunk whose line range spans them."""
    elements = [_para("First short paragraph.", line=1), _para("Second short paragraph.", line=3)]
    (chunk,) = _chunks(elements, embedder)
    assert chunk.text == "First short paragraph.\n\nSecond short paragraph."
    assert (chunk.location.line_start, chunk.location.line_end) == (1, 3)


def test_consecutive_chunks_overlap_by_whole_sentences(embedder) -> None:  # type: ignore[no-untyped-def]
    """A chunk opens with the last whole sentences of the one before, within the overlap budget."""
    text = " ".join(f"Fact {i} is here." for i in range(60))
    chunks = _chunks([_para(text)], embedder, overlap=12)
    assert len(chunks) >= 2
    for first, second in itertools.pairwise(chunks):
        before = re.findall(r"Fact \d+ is here\.", first.text)
        after = re.findall(r"Fact \d+ is here\.", second.text)
        shared = [s for s in after if s in before]
        assert shared, "consecutive chunks share no sentence"
        assert shared == before[-len(shared) :] == after[: len(shared)]
        assert sum(embedder.count_tokens(shared)) <= 12


def test_ids_are_stable_and_distinct(embedder) -> None:  # type: ignore[no-untyped-def]
    """The same input yields the same ids on every run; ids differ between chunks and versions."""
    elements = [_para(" ".join(f"Line {i} of text." for i in range(80)))]
    first = [c.chunk_id for c in _chunks(elements, embedder)]
    assert first == [c.chunk_id for c in _chunks(elements, embedder)]
    assert len(set(first)) == len(first)
    assert chunk_id("d0c", 1, 0) != chunk_id("d0c", 2, 0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    paragraphs=st.lists(
        st.text(alphabet=st.sampled_from("abcdefgh .!?\n"), min_size=1, max_size=400), min_size=1, max_size=8
    )
)
def test_no_word_is_lost_and_chunks_fit(embedder, paragraphs: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Without overlap, the chunks hold exactly the input's text, in order, and every chunk fits.

    Whitespace aside: a "word" longer than a whole chunk (30 question marks are 30 tokens) must be
    cut, so the comparison is of the non-space characters, not of the words.
    """
    elements = [_para(p) for p in paragraphs if p.strip()]
    chunks = _chunks(elements, embedder, max_tokens=32, overlap=0)
    assert "".join(w for c in chunks for w in WORDS.findall(c.text)) == "".join(
        w for e in elements for w in WORDS.findall(e.text)
    )
    if chunks:
        assert max(embedder.count_tokens([c.text for c in chunks])) + embedder.special_tokens <= 32


# Sections a chunk must never cross: archive member, sheet, slide, heading path, metadata.
SECTIONS = [
    (Location(heading_path=("Alpha",)), {}),
    (Location(heading_path=("Alpha",)), {"ticket_id": "T-1"}),
    (Location(member="bundle.zip/notes.txt"), {}),
    (Location(sheet="Budget"), {}),
    (Location(slide=3, heading_path=("Roadmap",)), {}),
]


@st.composite
def _structured_elements(draw: st.DrawFn) -> list[Element]:
    """Elements in random sections, each with row, time, page and line positions; every word unique."""
    counter = itertools.count()
    elements: list[Element] = []
    for index in range(draw(st.integers(min_value=1, max_value=12))):
        sentences = [
            " ".join(f"w{next(counter)}" for _ in range(draw(st.integers(min_value=1, max_value=14)))) + "."
            for _ in range(draw(st.integers(min_value=1, max_value=5)))
        ]
        base, metadata = SECTIONS[draw(st.integers(min_value=0, max_value=len(SECTIONS) - 1))]
        location = base.model_copy(
            update={
                "row_start": index + 2,
                "time_start": index * 1.5,
                "time_end": index * 1.5 + 1.0,
                "page": index // 3 + 1,
                "line_start": index * 10 + 1,
                "line_end": index * 10 + 5,
            }
        )
        elements.append(Element(text=" ".join(sentences), location=location, metadata=metadata))
    return elements


def _section(location: Location, metadata: dict[str, str]) -> tuple[object, ...]:
    return (location.member, location.sheet, location.slide, location.heading_path, tuple(sorted(metadata.items())))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(elements=_structured_elements(), overlap=st.sampled_from([0, 8, 16]))
def test_structured_chunks_lose_nothing_repeat_only_the_overlap_and_locate_validly(  # type: ignore[no-untyped-def]
    embedder, elements: list[Element], overlap: int
) -> None:
    """Every word lands in order; a chunk repeats at most `overlap` tokens of its predecessor in the
    same section and nothing across sections; chunk locations name the section and span their words."""
    chunks = _chunks(elements, embedder, max_tokens=48, overlap=overlap)
    source = {w: i for i, e in enumerate(elements) for w in WORDS.findall(e.text.replace(".", ""))}
    stream = [w for e in elements for w in WORDS.findall(e.text.replace(".", ""))]
    position = 0
    previous: list[str] = []
    for chunk in chunks:
        words = WORDS.findall(chunk.text.replace(".", ""))
        owners = {source[w] for w in words}
        # One section per chunk, and the chunk's location and metadata are that section's.
        sections = {_section(elements[i].location, elements[i].metadata) for i in owners}
        assert sections == {_section(chunk.location, chunk.metadata)}
        # The words continue the input stream, after a repeated tail of the previous chunk.
        repeated = next(k for k in range(len(words) + 1) if words[k:] == stream[position : position + len(words) - k])
        if repeated:
            assert words[:repeated] == previous[-repeated:]
            assert embedder.count_tokens([" ".join(words[:repeated])])[0] <= overlap + repeated
            assert _section(chunk.location, chunk.metadata) == _section(
                elements[source[previous[-1]]].location, elements[source[previous[-1]]].metadata
            )
        position += len(words) - repeated
        previous = words
        # Ranges are well-formed and cover every contributing element.
        rows = [elements[i].location.row_start for i in owners]
        assert chunk.location.row_start == min(rows)
        assert (chunk.location.row_end or chunk.location.row_start) == max(rows)
        assert chunk.location.time_start is not None
        assert chunk.location.time_end is not None
        assert chunk.location.time_start <= chunk.location.time_end
        assert chunk.location.line_start is not None
        assert chunk.location.line_end is not None
        assert chunk.location.line_start <= chunk.location.line_end
    assert position == len(stream)


def test_cues_join_as_running_speech_and_rows_as_lines(embedder) -> None:  # type: ignore[no-untyped-def]
    """Subtitle cues are joined by spaces and table rows by newlines; other elements by a blank line."""
    cues = [
        Element(text=t, location=Location(time_start=i, time_end=i + 1), kind="cue")
        for i, t in enumerate(["So we", "began."])
    ]
    rows = [Element(text=f"id: {i}", location=Location(row_start=i + 2), kind="table_row") for i in range(2)]
    paragraphs = [_para("One."), _para("Two.")]

    assert [c.text for c in _chunks(cues, embedder)] == ["So we began."]
    assert [c.text for c in _chunks(rows, embedder)] == ["id: 0\nid: 1"]
    assert [c.text for c in _chunks(paragraphs, embedder)] == ["One.\n\nTwo."]


def test_a_long_wrapped_paragraph_is_cut_at_whole_sentences_located_at_their_lines(embedder) -> None:  # type: ignore[no-untyped-def]
    """A hard-wrapped paragraph too long for one chunk is cut between sentences, never inside one
    (not at "e.g." or "3.19"), and each chunk's line range is that of the lines its text came from."""
    sentence = "Version 3.19 of the tool, e.g. the one shipped with Debian, keeps its cache for a week."
    words = sentence.split()
    lines = [" ".join(words[:9]), " ".join(words[9:])] * 12  # each sentence wrapped over two lines
    text = "\n".join(lines)
    element = Element(text=text, location=Location(line_start=100, line_end=100 + len(lines) - 1), kind="paragraph")
    chunks = _chunks([element], embedder, max_tokens=64, overlap=0)
    assert len(chunks) >= 3
    for chunk in chunks:
        assert " ".join(chunk.text.split()).count(sentence) * len(sentence.split()) == len(chunk.text.split())
        first, last = chunk.location.line_start, chunk.location.line_end
        assert first is not None
        assert last is not None
        assert "\n".join(lines[first - 100 : last - 100 + 1]).split() == chunk.text.split()


def test_embedding_input_puts_the_heading_path_before_the_chunk_text() -> None:
    """With heading context the model reads "Guide > Install" then the text; without it, or for a
    chunk outside any heading, the text alone. The chunk itself is not changed."""
    located = Chunk(
        chunk_id="c", doc_id="d", version=1, ordinal=0, text="Run the installer.", token_count=5,
        location=Location(heading_path=("Guide", " Install "), line_start=3, line_end=3),
    )  # fmt: skip
    assert embedding_input(located, heading_context=True) == "Guide > Install\n\nRun the installer."
    assert embedding_input(located, heading_context=False) == "Run the installer."
    bare = located.model_copy(update={"location": Location(line_start=1, line_end=1)})
    assert embedding_input(bare, heading_context=True) == "Run the installer."
    assert located.text == "Run the installer."


def test_heading_context_leaves_room_for_the_heading_path(embedder) -> None:  # type: ignore[no-untyped-def]
    """With heading context every chunk's embedding input (path, then text) fits the model; without, a full
    chunk plus its path would not, and the model would drop the chunk's last words."""
    heading = ("Operations handbook for the northern distribution centres", "Loading dock safety procedures")
    text = " ".join(f"Step {i}: check the forklift brakes and the dock lights." for i in range(60))
    for context in (True, False):
        chunks = chunk_elements(
            [_para(text, heading)],
            doc_id="d0c",
            version=1,
            tokenizer=embedder,
            max_tokens=64,
            overlap_tokens=8,
            heading_context=context,
        )
        inputs = [embedding_input(c, heading_context=True) for c in chunks]
        longest = max(embedder.count_tokens(inputs)) + embedder.special_tokens
        assert (longest <= 64) is context
        assert " ".join(c.text for c in chunks).count("Step 59:") >= 1
