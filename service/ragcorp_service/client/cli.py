"""`ragcorp`: ingest files or a BEIR corpus, search, ask, and evaluate retrieval.

    ragcorp ingest PATH... [--collection C] [--fail-fast]
    ragcorp ingest --beir DIR [--collection C]
    ragcorp search QUERY [--mode hybrid|vector|keyword] [--top-k N]
    ragcorp ask QUESTION [--stream]
    ragcorp eval --beir DIR --queries FILE --qrels FILE [--modes hybrid,vector,keyword]

The service is RAGCORP_URL (default http://127.0.0.1:8000), the key RAGCORP_API_KEY;
--url and --api-key override them, before or after the command.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import httpx
from tqdm import tqdm

from ragcorp_service.client import beir
from ragcorp_service.client.http import RagCorpClient, ServiceError
from ragcorp_service.client.ranking_metrics import documents_by_best_chunk, mrr_at_k, ndcg_at_k, recall_at_k

SUPPORTED = frozenset({".txt", ".md", ".markdown", ".html", ".htm", ".pdf"})
T = TypeVar("T")


DEFAULT_URL = "http://127.0.0.1:8000"
#: Files sent per upload request; a refused request is retried file by file to find the culprit.
FILES_PER_REQUEST = 8


class UsageError(Exception):
    """A mistake on the command line (a path that does not exist): one line, exit status 2."""


def _files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED))
        elif path.is_file():
            found.append(path)
        else:
            raise UsageError(f"no such file or directory: {path}")
    return found


@dataclass(frozen=True)
class FileResult:
    path: Path
    outcome: str  # "stored", "already stored" or "refused"
    reason: str = ""

    def line(self) -> str:
        return f"{self.outcome:<15} {self.path}" + (f": {self.reason}" if self.reason else "")


async def _upload_files(
    client: RagCorpClient, files: list[Path], collection: str, concurrency: int, fail_fast: bool
) -> list[FileResult]:
    """Upload files a few per request, printing each file's outcome as it is known.

    The service stores a request all or none, so a request the service refuses (4xx) is sent
    again one file per request: the good files are stored and the bad one is named with the
    service's reason. A server or network failure stops everything. `fail_fast` stops at the
    first refusal instead.
    """
    limiter = asyncio.Semaphore(concurrency)
    results: list[FileResult] = []
    with tqdm(total=len(files), unit="file", file=sys.stderr, disable=None) as progress:

        def report(result: FileResult) -> None:
            results.append(result)
            tqdm.write(result.line(), file=sys.stdout)
            progress.update(1)

        async def send(batch: list[Path]) -> None:
            try:
                async with limiter:
                    documents = await client.upload(batch, collection)
            except ServiceError as exc:
                if fail_fast or not 400 <= exc.status < 500 or exc.status == 429:
                    raise
                if len(batch) > 1:
                    await asyncio.gather(*(send([path]) for path in batch))
                else:
                    report(FileResult(batch[0], "refused", exc.detail))
                return
            for path, document in zip(batch, documents, strict=True):
                report(FileResult(path, "stored" if document.get("created") else "already stored"))

        await asyncio.gather(*(send(batch) for batch in _batches(files, FILES_PER_REQUEST)))
    return results


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


async def _run_batches(
    batches: Iterable[list[T]], send: Callable[[list[T]], Awaitable[list[dict[str, Any]]]], concurrency: int, total: int
) -> tuple[int, int]:
    """Send batches with at most `concurrency` in flight; returns (created, already stored)."""
    limiter = asyncio.Semaphore(concurrency)
    created = existing = 0
    with tqdm(total=total, unit="doc", file=sys.stderr, disable=None) as progress:

        async def one(batch: list[T]) -> None:
            nonlocal created, existing
            async with limiter:
                documents = await send(batch)
            created += sum(1 for d in documents if d.get("created"))
            existing += sum(1 for d in documents if not d.get("created"))
            progress.update(len(documents))

        await asyncio.gather(*(one(batch) for batch in batches))
    return created, existing


async def _ingest_beir(
    client: RagCorpClient, folder: Path, collection: str, batch_size: int, concurrency: int
) -> tuple[int, int]:
    documents = list(beir.read_corpus(folder))
    for document in documents:
        document["collection"] = collection
    return await _run_batches(_batches(documents, batch_size), client.ingest_batch, concurrency, len(documents))


async def _ingest(client: RagCorpClient, args: argparse.Namespace) -> int:
    started = time.perf_counter()
    refused = 0
    if args.beir:
        created, existing = await _ingest_beir(
            client, Path(args.beir), args.collection, args.batch_size, args.concurrency
        )
    else:
        files = _files([Path(p) for p in args.paths])
        results = await _upload_files(client, files, args.collection, args.concurrency, args.fail_fast)
        created = sum(r.outcome == "stored" for r in results)
        existing = sum(r.outcome == "already stored" for r in results)
        refused = sum(r.outcome == "refused" for r in results)
    elapsed = time.perf_counter() - started
    summary = f"ingested {created} new and {existing} already stored documents in {elapsed:.1f}s"
    print(summary + (f"; {refused} file{'s' * (refused != 1)} refused" if refused else ""))
    return 1 if refused else 0


async def _search(client: RagCorpClient, args: argparse.Namespace) -> int:
    result = await client.search(args.query, **_options(args))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for rank, hit in enumerate(result["results"], 1):
        text = " ".join(hit["text"].split())
        print(f"{rank:2}. {hit['score']:.4f}  {hit['title']}\n    {text[:200]}")
    return 0


async def _ask(client: RagCorpClient, args: argparse.Namespace) -> int:
    if args.stream:
        async for event, data in client.ask_stream(args.question, **_options(args)):
            if event == "token":
                print(data["text"], end="", flush=True)
            elif event == "citations":
                print()
                for citation in data:
                    print(f"[{citation['number']}] {citation['title']} ({citation['document_id']})")
        return 0
    result = await client.ask(args.question, **_options(args))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(result["answer"])
    for citation in result["citations"]:
        print(f"[{citation['number']}] {citation['title']} ({citation['document_id']})")
    return 0


async def _eval(client: RagCorpClient, args: argparse.Namespace) -> int:
    collection = args.collection or Path(args.beir).name
    if not args.no_ingest:  # documents already stored are recognised by content hash and skipped
        created, existing = await _ingest_beir(client, Path(args.beir), collection, 32, 2)
        print(f"corpus: {created} documents ingested, {existing} already stored", file=sys.stderr)
    queries = beir.read_queries(Path(args.queries))
    qrels = beir.read_qrels(Path(args.qrels))
    judged = [(qid, text) for qid, text in queries.items() if qid in qrels]
    limiter = asyncio.Semaphore(args.concurrency)
    report: dict[str, dict[str, float]] = {}
    for mode in args.modes.split(","):

        async def rank(query: str, mode: str = mode) -> list[str]:
            async with limiter:
                result = await client.search(query, mode=mode, top_k=args.top_k, collection=collection)
            return documents_by_best_chunk([(h["metadata"]["beir_id"], h["score"]) for h in result["results"]])

        started = time.perf_counter()
        rankings = await asyncio.gather(*(rank(text) for _, text in judged))
        n = len(judged)
        report[mode] = {
            "ndcg@10": sum(ndcg_at_k(r, qrels[q], 10) for (q, _), r in zip(judged, rankings, strict=True)) / n,
            "recall@100": sum(recall_at_k(r, qrels[q], 100) for (q, _), r in zip(judged, rankings, strict=True)) / n,
            "mrr@10": sum(mrr_at_k(r, qrels[q], 10) for (q, _), r in zip(judged, rankings, strict=True)) / n,
            "queries": n,
            "seconds": round(time.perf_counter() - started, 2),
        }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{'mode':8} {'nDCG@10':>8} {'R@100':>7} {'MRR@10':>7} {'queries':>8}")
    for mode, row in report.items():
        print(f"{mode:8} {row['ndcg@10']:8.4f} {row['recall@100']:7.4f} {row['mrr@10']:7.4f} {row['queries']:8.0f}")
    return 0


def _options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"mode": args.mode, "top_k": args.top_k}
    if args.collection:
        options["collection"] = args.collection
    return options


def _connection_options(parser: argparse.ArgumentParser, with_defaults: bool) -> None:
    """--url and --api-key; a subcommand's copies default to "not given", so they override the
    top-level ones only when written after the command."""
    url_default = os.environ.get("RAGCORP_URL", DEFAULT_URL) if with_defaults else argparse.SUPPRESS
    key_default = os.environ.get("RAGCORP_API_KEY") if with_defaults else argparse.SUPPRESS
    parser.add_argument("--url", default=url_default, help=f"the service (default: $RAGCORP_URL, else {DEFAULT_URL})")
    parser.add_argument(
        "--api-key", default=key_default, help="the API key sent as X-API-Key (default: $RAGCORP_API_KEY)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ragcorp",
        description=__doc__.split("\n\n")[0],
        epilog="environment: RAGCORP_URL (the service), RAGCORP_API_KEY (its key)",
    )
    _connection_options(parser, with_defaults=True)
    connection = argparse.ArgumentParser(add_help=False)
    _connection_options(connection, with_defaults=False)
    commands = parser.add_subparsers(dest="command", required=True)

    ingest = commands.add_parser("ingest", help="ingest files, folders, or a BEIR corpus", parents=[connection])
    ingest.add_argument("paths", nargs="*", help="files or folders (.txt .md .html .pdf)")
    ingest.add_argument("--beir", metavar="DIR", help="a BEIR dataset folder (reads corpus.jsonl)")
    ingest.add_argument("--collection", default="default")
    ingest.add_argument("--batch-size", type=int, default=32)
    ingest.add_argument("--concurrency", type=int, default=2)
    ingest.add_argument("--fail-fast", action="store_true", help="stop at the first file the service refuses")

    for name, helptext, positional in (("search", "rank chunks", "query"), ("ask", "answer a question", "question")):
        sub = commands.add_parser(name, help=helptext, parents=[connection])
        sub.add_argument(positional)
        sub.add_argument("--mode", choices=["hybrid", "vector", "keyword"], default="hybrid")
        sub.add_argument("--top-k", type=int, default=5)
        sub.add_argument("--collection")
        sub.add_argument("--json", action="store_true", help="print the raw JSON response")
        if name == "ask":
            sub.add_argument("--stream", action="store_true", help="print the answer as it is generated")

    evaluate = commands.add_parser(
        "eval", help="nDCG@10, Recall@100 and MRR@10 on BEIR judgements", parents=[connection]
    )
    evaluate.add_argument("--beir", metavar="DIR", required=True)
    evaluate.add_argument("--queries", required=True)
    evaluate.add_argument("--qrels", required=True)
    evaluate.add_argument("--modes", default="hybrid,vector,keyword")
    evaluate.add_argument("--collection", help="where the corpus is stored (default: the BEIR folder's name)")
    evaluate.add_argument("--no-ingest", action="store_true", help="evaluate what is stored, ingest nothing")
    evaluate.add_argument("--top-k", type=int, default=100)
    evaluate.add_argument("--concurrency", type=int, default=4)
    evaluate.add_argument("--json", action="store_true")
    return parser


COMMANDS: Mapping[str, Callable[[RagCorpClient, argparse.Namespace], Awaitable[int]]] = MappingProxyType(
    {"ingest": _ingest, "search": _search, "ask": _ask, "eval": _eval}
)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "ingest" and not args.paths and not args.beir:
        parser.error("ingest needs PATH... or --beir DIR")

    async def run() -> int:
        async with RagCorpClient(args.url, args.api_key) as client:
            return await COMMANDS[args.command](client, args)

    try:
        return asyncio.run(run())
    except UsageError as exc:
        print(f"ragcorp: {exc}", file=sys.stderr)
        return 2
    except ServiceError as exc:
        print(f"ragcorp: {exc}", file=sys.stderr)
        return 1
    except httpx.TransportError as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        print(f"ragcorp: cannot reach {args.url}: {reason}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:  # a file that cannot be read, a BEIR file that is not JSON
        print(f"ragcorp: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
