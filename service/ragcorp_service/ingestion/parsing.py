"""Turning an uploaded file into a title and plain text.

The file's extension decides the parser (content types from browsers and curl
are too unreliable to trust first). Anything we cannot read becomes an
`UnreadableFile` whose message tells the user what was wrong.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import PurePath

SUPPORTED_EXTENSIONS = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf")
_MARKDOWN_TITLE = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)


class UnreadableFile(ValueError):
    """The file's type is unsupported, or its content does not parse as that type."""


class ParseLimitExceeded(ValueError):
    """Parsing the file would take more than a limit allows (decompressed size, time); the message names it."""


@dataclass(frozen=True)
class ParsedFile:
    title: str
    text: str
    media_type: str


def parse_file(filename: str, content: bytes) -> ParsedFile:
    """The file's title and text; NUL characters (which no text store keeps) are dropped."""
    parsed = _parse(filename, content)
    return ParsedFile(parsed.title.replace("\x00", ""), parsed.text.replace("\x00", ""), parsed.media_type)


def _parse(filename: str, content: bytes) -> ParsedFile:
    suffix = PurePath(filename).suffix.lower()
    stem = PurePath(filename).stem or filename
    if suffix in (".txt",):
        return ParsedFile(stem, _decode(filename, content), "text/plain")
    if suffix in (".md", ".markdown"):
        text = _decode(filename, content)
        heading = _MARKDOWN_TITLE.search(text)
        return ParsedFile(heading.group(1) if heading else stem, text, "text/markdown")
    if suffix in (".html", ".htm"):
        return _parse_html(stem, _decode(filename, content))
    if suffix == ".pdf":
        return _parse_pdf(filename, stem, content)
    raise UnreadableFile(
        f"{filename}: unsupported file type {suffix or '(none)'}; supported: {', '.join(SUPPORTED_EXTENSIONS)}"
    )


def _decode(filename: str, content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"{filename}: not UTF-8 text (byte {exc.start})") from None


def _parse_html(stem: str, html: str) -> ParsedFile:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    title = soup.title.get_text(strip=True) if soup.title else ""
    if soup.title:
        soup.title.decompose()
    blocks = [block.strip() for block in soup.get_text("\n").split("\n")]
    text = "\n\n".join(block for block in blocks if block)
    return ParsedFile(title or stem, text, "text/html")


def _parse_pdf(filename: str, stem: str, content: bytes) -> ParsedFile:
    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError, PdfReadError

    try:
        reader = PdfReader(io.BytesIO(content))
        if reader.is_encrypted:
            raise UnreadableFile(f"{filename}: encrypted PDFs are not supported")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = (reader.metadata.title if reader.metadata else None) or stem
    except LimitReachedError as exc:
        raise ParseLimitExceeded(f"{filename}: refused, the PDF inflates past pypdf's safety limit ({exc})") from None
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, UnreadableFile):
            raise
        raise UnreadableFile(f"{filename}: not a readable PDF ({exc})") from None
    return ParsedFile(str(title), "\n\n".join(p.strip() for p in pages if p.strip()), "application/pdf")
