"""Answers never carry remote links or images that came from the sources."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cairn.generate.safety import REMOVED_LINK, defang


def test_images_links_tags_and_urls_are_removed_but_their_words_stay() -> None:
    """Markdown images and links keep their text; HTML and bare URLs of any fetching scheme go."""
    text = (
        "See ![the chart](https://evil.example/pixel.png?leak=1) and [the policy](http://evil.example/p). "
        '<img src="https://evil.example/x.png"> Visit www.evil.example or https://evil.example/a, '
        "javascript:alert(1) data:text/html;base64,AAAA.\n[ref]: https://evil.example/r"
    )
    cleaned = defang(text)
    assert "evil.example" not in cleaned
    assert "the chart" in cleaned
    assert "the policy" in cleaned
    assert "<img" not in cleaned
    assert "javascript:" not in cleaned.lower()
    assert cleaned.count(REMOVED_LINK) >= 3


@given(st.text(max_size=200), st.sampled_from(["http", "https", "HTTPS", "ftp", "file", "data", "javascript"]))
def test_no_url_survives_in_any_surrounding_text(prefix: str, scheme: str) -> None:
    """Whatever surrounds it, a URL with a fetching scheme never survives."""
    cleaned = defang(f"{prefix} {scheme}://evil.example/x {prefix}")
    assert "evil.example" not in cleaned
