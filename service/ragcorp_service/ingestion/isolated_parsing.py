"""Parsing uploads in a child process with a time limit, so no file can stall the service.

Parsers are CPU-bound pure Python (pypdf, BeautifulSoup): on the event loop a crafted
16 KB PDF (pages sharing one huge content stream) kept every route, `/healthz`
included, unanswered for minutes, and Kubernetes restarts a Pod whose liveness probe
goes unanswered. Each file is parsed in a process forked from a small server that has
the parsers loaded (multiprocessing's forkserver: a fork costs milliseconds and shares
nothing with the service's threads); past PARSE_TIMEOUT_SECONDS the child is killed and
the upload refused with a 413 naming the limit.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from multiprocessing.connection import Connection
from typing import Any

from ragcorp_service.ingestion.parsing import ParsedFile, ParseLimitExceeded, UnreadableFile, parse_file

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(["ragcorp_service.ingestion.parsing", "pypdf", "bs4"])


def _child(connection: Connection, filename: str, content: bytes, charset: str | None) -> None:
    try:
        parsed = parse_file(filename, content, charset)
        connection.send(("ok", parsed.title, parsed.text, parsed.media_type))
    except (UnreadableFile, ParseLimitExceeded) as exc:
        connection.send((type(exc).__name__, str(exc)))
    except Exception as exc:  # a parser bug is the file's problem to the user, with the reason
        connection.send(("UnreadableFile", f"{filename}: could not be parsed ({type(exc).__name__}: {exc})"))
    finally:
        connection.close()


async def parse_isolated(filename: str, content: bytes, limit_seconds: float, charset: str | None = None) -> ParsedFile:
    """`parse_file` in a child process; ParseLimitExceeded when it takes longer than `limit_seconds`."""
    receiver, sender = _context.Pipe(duplex=False)
    process = _context.Process(target=_child, args=(sender, filename, content, charset), daemon=True)
    process.start()
    sender.close()
    try:
        if not await asyncio.to_thread(receiver.poll, limit_seconds):
            raise ParseLimitExceeded(
                f"{filename}: parsing took longer than {limit_seconds:g} s (PARSE_TIMEOUT_SECONDS); refused"
            )
        try:
            outcome: tuple[Any, ...] = receiver.recv()
        except EOFError:  # the child died without a word (killed by the OS, out of memory)
            raise UnreadableFile(f"{filename}: the parser stopped without a result") from None
    finally:
        receiver.close()
        if process.is_alive():
            process.kill()
        await asyncio.to_thread(process.join)
    if outcome[0] == "ok":
        return ParsedFile(outcome[1], outcome[2], outcome[3])
    raise (ParseLimitExceeded if outcome[0] == "ParseLimitExceeded" else UnreadableFile)(outcome[1])
