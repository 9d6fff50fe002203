"""Every image the README shows is in the repository, with a text for those who cannot see
it: a screenshot renamed or dropped from `docs/screenshots/` fails here, not on GitHub."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from tests.readme_blocks import ROOT

# ![alt](path "title") and <img src="path" alt="…">: the two ways markdown shows an image.
_MARKDOWN: Final = re.compile(r"!\[(?P<alt>[^\]]*)\]\((?P<src>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HTML: Final = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_ATTRIBUTE: Final = re.compile(r"""(?P<name>src|alt)\s*=\s*["'](?P<value>[^"']*)["']""")
_PNG: Final = b"\x89PNG\r\n\x1a\n"
_MAX_BYTES: Final = 200 * 1024  # kept small: the repository carries every version of each


def readme_images(text: str) -> list[tuple[str, str]]:
    """(source, alt text) of every image in a markdown text, in order."""
    found = [(m["src"], m["alt"]) for m in _MARKDOWN.finditer(text)]
    for tag in _HTML.finditer(text):
        attributes = {m["name"]: m["value"] for m in _ATTRIBUTE.finditer(tag.group())}
        found.append((attributes.get("src", ""), attributes.get("alt", "")))
    return found


def test_the_image_reader_finds_both_forms() -> None:
    text = '![A lamp](docs/a.png)\n<img src="docs/b.png" alt="A chart" width="400">\n'
    assert readme_images(text) == [("docs/a.png", "A lamp"), ("docs/b.png", "A chart")]


def test_every_image_the_readme_shows_exists_with_an_alt_text() -> None:
    images = readme_images((ROOT / "README.md").read_text(encoding="utf-8"))
    assert images, "the README shows the web app's screenshots"
    for source, alt in images:
        assert not re.match(r"[a-z]+:", source), f"{source}: the README's images are ours"
        path = ROOT / Path(source)
        assert path.is_file(), f"{source}: linked by the README, not in the repository"
        assert len(alt.split()) >= 3, f"{source}: its alt text says what it shows"
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == _PNG, f"{source}: not a PNG"
        assert path.stat().st_size <= _MAX_BYTES, f"{source}: {path.stat().st_size} bytes"
