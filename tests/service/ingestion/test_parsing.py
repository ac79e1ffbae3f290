"""Each supported file type yields its title and readable text; others are refused by name."""

from __future__ import annotations

import pytest

from ragcorp_service.ingestion.parsing import UnreadableFile, parse_file
from tests.support.pdfs import make_pdf


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


def test_a_line_break_inside_an_html_paragraph_is_a_space() -> None:
    html = (
        b"<p>The on-call engineer answers\npages within <em>fifteen</em>\n  minutes.<br>Hand-over is on Monday.</p>"
        b"<li>One\nitem</li>"
    )
    assert parse_file("page.html", html).text == (
        "The on-call engineer answers pages within fifteen minutes.\n\nHand-over is on Monday.\n\nOne item"
    )


FRENCH = (
    "Le caf\u00e9 du coin sert une cr\u00e8me br\u00fbl\u00e9e d\u00e9licieuse chaque vendredi apr\u00e8s-midi. "
    "Les \u00e9l\u00e8ves y pr\u00e9parent leurs examens, et le propri\u00e9taire, tr\u00e8s g\u00e9n\u00e9reux, "
    "leur offre souvent un th\u00e9. C'est l\u00e0 que j'ai appris \u00e0 \u00e9crire."
)


def test_html_honours_its_meta_charset() -> None:
    html = f'<html><head><meta charset="iso-8859-1"><title>Caf\u00e9</title></head><body><p>{FRENCH}</p>'
    parsed = parse_file("menu.html", html.encode("latin-1"))
    assert parsed.title == "Caf\u00e9" and parsed.text == FRENCH


def test_the_upload_s_declared_charset_is_honoured() -> None:
    assert parse_file("menu.txt", "Caf\u00e9 cr\u00e8me".encode("latin-1"), "iso-8859-1").text == "Caf\u00e9 cr\u00e8me"


def test_an_undeclared_legacy_encoding_is_detected() -> None:
    assert parse_file("menu.txt", FRENCH.encode("latin-1")).text == FRENCH
    assert parse_file("menu.html", f"<p>{FRENCH}</p>".encode("latin-1")).text == FRENCH


def test_pdf_text_and_title_are_extracted() -> None:
    parsed = parse_file("paper.pdf", make_pdf("Ribosomes translate messenger RNA.", title="Ribosomes"))
    assert parsed.title == "Ribosomes"
    assert "Ribosomes translate messenger RNA." in parsed.text


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("image.png", b"\x89PNG", "unsupported file type .png"),
        ("binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(200)), "not text"),
        ("broken.pdf", b"%PDF-1.4 garbage", "not a readable PDF"),
    ],
)
def test_unreadable_files_are_refused_with_a_reason(name: str, content: bytes, message: str) -> None:
    with pytest.raises(UnreadableFile, match=message):
        parse_file(name, content)


def test_html_comments_and_the_doctype_are_not_text() -> None:
    """Read as a browser shows it: a comment is not content, whatever it says."""
    html = (
        b"<!DOCTYPE html><html><body><!-- internal: the admin password is hunter2 -->"
        b"<p>Public paragraph.</p><![CDATA[ hidden data ]]><?xml-stylesheet href='x'?></body></html>"
    )
    parsed = parse_file("page.html", html)
    assert parsed.text == "Public paragraph."
