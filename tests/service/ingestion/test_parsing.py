"""Each supported file type yields its title and readable text; others are refused by name."""

from __future__ import annotations

import pytest

from ragcorp_service.ingestion.parsing import UnreadableFile, parse_file
from tests.service.ingestion.pdfs import make_pdf


def test_markdown_title_comes_from_the_first_heading() -> None:
    parsed = parse_file("notes.md", b"Intro line\n\n# Cell Biology\n\nMitochondria make ATP.")
    assert parsed.title == "Cell Biology"
    assert "Mitochondria make ATP." in parsed.text


def test_text_file_title_is_its_name() -> None:
    assert parse_file("plain.txt", "caf\u00e9".encode()).title == "plain"


def test_html_keeps_visible_text_only() -> None:
    html = (
        b"<html><head><title>Page</title><script>var secret=1</script><style>p{}</style></head>"
        b"<body><h1>Heading</h1><p>Visible paragraph.</p></body></html>"
    )
    parsed = parse_file("page.html", html)
    assert parsed.title == "Page"
    assert "Visible paragraph." in parsed.text and "Heading" in parsed.text
    assert "secret" not in parsed.text and "p{}" not in parsed.text


def test_pdf_text_and_title_are_extracted() -> None:
    parsed = parse_file("paper.pdf", make_pdf("Ribosomes translate messenger RNA.", title="Ribosomes"))
    assert parsed.title == "Ribosomes"
    assert "Ribosomes translate messenger RNA." in parsed.text


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("image.png", b"\x89PNG", "unsupported file type .png"),
        ("binary.txt", b"\xff\xfe\xfa", "not UTF-8"),
        ("broken.pdf", b"%PDF-1.4 garbage", "not a readable PDF"),
    ],
)
def test_unreadable_files_are_refused_with_a_reason(name: str, content: bytes, message: str) -> None:
    with pytest.raises(UnreadableFile, match=message):
        parse_file(name, content)
