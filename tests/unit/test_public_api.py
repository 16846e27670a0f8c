import cairn


def test_public_api_is_exactly_this() -> None:
    """The names `from cairn import *` exposes are pinned; changing them is a deliberate API change."""
    assert sorted(cairn.__all__) == sorted(
        [
            "Answer",
            "Cairn",
            "CairnError",
            "Chunk",
            "Citation",
            "Client",
            "CollectionInfo",
            "DocumentInfo",
            "DocumentVersionInfo",
            "Element",
            "FailedFile",
            "FileWarning",
            "IngestReport",
            "Location",
            "SearchHit",
            "SearchResult",
            "Settings",
            "__version__",
            "errors",
        ]
    )
    for name in cairn.__all__:
        assert hasattr(cairn, name), name


def test_every_error_derives_from_cairn_error() -> None:
    """Catching CairnError catches every error cairn raises on purpose."""
    for name in cairn.errors.__all__:
        assert issubclass(getattr(cairn.errors, name), cairn.errors.CairnError)


def test_location_labels() -> None:
    """Locations render the way citations show them."""
    Location = cairn.Location
    assert Location(page=3).label == "p. 3"
    assert Location(page=3, page_end=4).label == "pp. 3–4"
    assert (
        Location(heading_path=("Setup", "Install"), line_start=10, line_end=24).label == "Setup › Install, lines 10–24"
    )
    assert Location(line_start=7, line_end=7).label == "line 7"
    assert Location(time_start=192.4, time_end=201.0).label == "00:03:12–00:03:21"
    assert Location(time_start=3725.0).label == "01:02:05"
    assert Location(sheet="Budget", row_start=4, row_end=9).label == "sheet Budget, rows 4–9"
    assert Location(slide=2, heading_path=("Roadmap",)).label == "slide 2, Roadmap"
    assert Location(member="bundle.zip/a.pdf", page=3).label == "bundle.zip/a.pdf, p. 3"
