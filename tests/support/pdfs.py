"""PDFs built by hand for parser tests: a minimal valid one, and two hostile ones."""

from __future__ import annotations

import zlib

CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"
FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def _page(contents: int, font: int) -> bytes:
    return (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
        b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (contents, font)
    )


def _stream(data: bytes, compressed: bool = False) -> bytes:
    flate = b" /Filter /FlateDecode" if compressed else b""
    return b"<< /Length %d%s >>\nstream\n" % (len(data), flate) + data + b"\nendstream"


def _assemble(objects: list[bytes], trailer: bytes = b"") -> bytes:
    """Objects numbered from 1 (1 is the catalog), a cross-reference table, and the trailer."""
    body = b"%PDF-1.4\n"
    offsets = []
    for number, content in enumerate(objects, 1):
        offsets.append(len(body))
        body += f"{number} 0 obj\n".encode() + content + b"\nendobj\n"
    xref = len(body)
    body += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    body += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    size = len(objects) + 1
    return body + b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (size, trailer, xref)


def make_pdf(text: str, title: str | None = None) -> bytes:
    """One page; each line of `text` is a line of the page, as a hard-wrapped PDF has them."""
    escaped = [line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for line in text.split("\n")]
    info = f"<< /Title ({title}) >>" if title else "<< >>"
    pages = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"
    shown = " T* ".join(f"({line}) Tj" for line in escaped)
    stream = _stream(f"BT /F1 12 Tf 14 TL 72 720 Td {shown} ET".encode())
    return _assemble([CATALOG, pages, _page(4, 5), stream, FONT, info.encode()], b" /Info 6 0 R")


def inflating_pdf(megabytes: int) -> bytes:
    """One page whose content stream is a few hundred KB compressed and `megabytes` inflated."""
    stream = _stream(zlib.compress(b" " * (megabytes * 1_000_000), 9), compressed=True)
    return _assemble([CATALOG, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>", _page(4, 5), stream, FONT])


def stalling_pdf(pages: int = 8, megabytes: int = 5) -> bytes:
    """A small file whose pages all share one content stream of `megabytes` of text operators."""
    operators = b"BT /F1 12 Tf 72 720 Td (stall) Tj ET\n" * (megabytes * 1_000_000 // 38)
    kids = " ".join(f"{3 + i} 0 R" for i in range(pages)).encode()
    tree = b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages
    shared = _stream(zlib.compress(operators, 9), compressed=True)
    return _assemble([CATALOG, tree, *[_page(3 + pages, 4 + pages)] * pages, shared, FONT])
