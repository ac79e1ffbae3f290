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


def parse_file(filename: str, content: bytes, charset: str | None = None) -> ParsedFile:
    """The file's title and text; NUL characters (which no text store keeps) are dropped.

    `charset` is the one the upload declared (its part's Content-Type), if any.
    """
    parsed = _parse(filename, content, charset)
    return ParsedFile(parsed.title.replace("\x00", ""), parsed.text.replace("\x00", ""), parsed.media_type)


def _parse(filename: str, content: bytes, charset: str | None) -> ParsedFile:
    suffix = PurePath(filename).suffix.lower()
    stem = PurePath(filename).stem or filename
    if suffix in (".txt",):
        return ParsedFile(stem, _decode(filename, content, charset), "text/plain")
    if suffix in (".md", ".markdown"):
        text = _decode(filename, content, charset)
        heading = _MARKDOWN_TITLE.search(text)
        return ParsedFile(heading.group(1) if heading else stem, text, "text/markdown")
    if suffix in (".html", ".htm"):
        return _parse_html(filename, stem, content, charset)
    if suffix == ".pdf":
        return _parse_pdf(filename, stem, content)
    raise UnreadableFile(
        f"{filename}: unsupported file type {suffix or '(none)'}; supported: {', '.join(SUPPORTED_EXTENSIONS)}"
    )


def _decode(filename: str, content: bytes, charset: str | None) -> str:
    """UTF-8 (with or without BOM), else the declared charset, else what charset-normalizer detects."""
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        utf8_error = exc
    if charset:
        try:
            return content.decode(charset)
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong declaration is common; detection below decides
    from charset_normalizer import from_bytes

    detected = from_bytes(content).best()
    if detected is None:
        raise UnreadableFile(
            f"{filename}: not text: not UTF-8 (byte {utf8_error.start}) and no other character encoding fits"
        )
    return str(detected)


# Elements that start a new block of text; inline ones (a, em, span...) run on within their block.
_BLOCK_ELEMENTS = frozenset(
    {"address", "article", "aside", "blockquote", "br", "dd", "details", "div", "dl", "dt", "figcaption"}
    | {"figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav"}
    | {"ol", "p", "pre", "section", "summary", "table", "td", "th", "tr", "ul"}
)
_WHITESPACE = re.compile(r"\s+")


def _parse_html(filename: str, stem: str, content: bytes, charset: str | None) -> ParsedFile:
    """Visible text, one paragraph per block element, with the source's own line wrapping undone.

    HTML collapses whitespace, so a newline inside a `<p>` is a space; only block elements
    (and `<br>`) break lines. The encoding is the declared one (the upload's or a `<meta charset>`),
    else detected.
    """
    from bs4 import BeautifulSoup
    from bs4.dammit import UnicodeDammit
    from bs4.element import NavigableString, PreformattedString

    dammit = UnicodeDammit(content, [charset] if charset else [], is_html=True)
    if dammit.unicode_markup is None:
        raise UnreadableFile(f"{filename}: not text: no character encoding fits")
    soup = BeautifulSoup(dammit.unicode_markup, "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    # What a browser never shows (comments, the doctype, CDATA, processing instructions: bs4's
    # preformatted strings) is never indexed: a comment once answered with the password in it.
    for node in soup.find_all(string=lambda s: isinstance(s, PreformattedString)):
        node.extract()
    title = _WHITESPACE.sub(" ", soup.title.get_text()).strip() if soup.title else ""
    if soup.title:
        soup.title.decompose()
    for string in soup.find_all(string=True):
        if string.find_parent("pre") is None:
            string.replace_with(NavigableString(_WHITESPACE.sub(" ", str(string))))
    for tag in soup.find_all(list(_BLOCK_ELEMENTS)):
        tag.insert_before("\n")
        tag.insert_after("\n")
    blocks = [block.strip() for block in soup.get_text().split("\n")]
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
