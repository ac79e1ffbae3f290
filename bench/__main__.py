"""`python -m bench` (or `make bench`): every benchmark, one table, bench/results.json.

Each section is saved as soon as it finishes, over what bench/results.json already
holds, so `BENCH_ONLY=search make bench` refreshes one section and keeps the others.

Knobs (environment): BENCH_ONLY (comma list of recipes, embedder, quality, ingest, search, ask, edge, operator,
e2e), BENCH_SECONDS (each timed load, default 10), BENCH_INGEST_DOCS (default 1000),
BENCH_EMBEDDER_DOCS (SciFact documents the embedder section embeds, default 400),
BENCH_RECIPE_DOCS (SciFact abstracts in the recipes section's broad text set, default 800),
BENCH_QUALITY_MODELS (comma list of local embedding models scored on SciFact, each in its own
database; default: the default model only),
BENCH_CHUNKS (the large corpus, default 100000), BENCH_MILLION_CHUNKS (the `million` section's corpus,
default 1000000; built once from the large one, about 16 min on 2 cores), BENCH_OPERATOR_RESOURCES (default 200),
BENCH_OPERATOR_SECONDS (the time the operator gets with them, default 300),
BENCH_OPERATOR_IDLE_SECONDS (how long its idle cost is measured, default 30),
BENCH_DATABASE_URL (an external PostgreSQL instead of the embedded one).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import asyncpg

from bench import (
    answer_calibration,
    answers,
    ask_load,
    e2e_cluster,
    edge,
    embedder,
    hostile_probes,
    ingest,
    machine,
    operator_load,
    quality,
    recipes,
    search_latency,
    synthetic,
    tantivy_peer,
)
from bench.service import (
    database_name,
    database_url,
    ensure_database,
    for_embedding_model,
    serving,
    with_database,
)
from ragcorp_service.client.beir import read_qrels, read_queries
from ragcorp_service.local_models import default_onnx_dir
from ragcorp_service.providers.embedders import LocalEmbedder, local_embedder
from ragcorp_service.settings import LOCAL_EMBEDDING_MODEL

RESULTS = Path(__file__).resolve().parent / "results.json"
SECTIONS = ("recipes", "embedder", "quality", "ingest", "search", "million", "ask", "edge", "operator", "e2e")
NEED_DATABASE = {"quality", "ingest", "search", "million", "ask", "edge"}


def knob(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


class Results(dict[str, Any]):
    """Sections measured now, over those of earlier runs; saved after every section."""

    def __init__(self) -> None:
        super().__init__(json.loads(RESULTS.read_text()) if RESULTS.exists() else {})

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        super().__setitem__(f"{key}_measured_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        RESULTS.write_text(json.dumps(self, indent=2) + "\n")


async def run(only: set[str]) -> dict[str, Any]:
    corpus, queries_file, _ = quality.scifact_paths()
    queries = list(read_queries(queries_file).values())
    results = Results()
    results["machine"] = {**results.get("machine", {}), **machine.describe()}
    _embedder_sections(only, results, corpus, queries_file, queries)
    _cluster_sections(only, results)  # no database of ours: the operator's own emulator or cluster
    if only & NEED_DATABASE:
        await _database_sections(only, results, queries)
    return results


def _embedder_sections(only: set[str], results: Results, corpus: Path, queries_file: Path, queries: list[str]) -> None:
    if "recipes" in only:
        print("recipes: int8 export recipes against fp32 on a broad text set ...", flush=True)
        _, _, qrels_file = quality.scifact_paths()
        results["recipes"] = recipes.measure(corpus, queries_file, qrels_file, int(knob("BENCH_RECIPE_DOCS", 800)))
        print("\n".join(recipes.lines(results["recipes"])), flush=True)
    if "embedder" in only:
        print("embedder: the default backend vs fp32 (and PyTorch where installed) on SciFact chunks ...", flush=True)
        results["embedder"] = embedder.measure(
            corpus, queries[:200], int(knob("BENCH_EMBEDDER_DOCS", 400)), batch_sizes=(1, 4, 16, 64)
        )
        print(embedder.line(results["embedder"]), flush=True)


def _cluster_sections(only: set[str], results: Results) -> None:
    if "operator" in only:
        print("operator: one rollout, then many resources ...", flush=True)
        idle = knob("BENCH_OPERATOR_IDLE_SECONDS", 30)
        results["operator_rollout"] = operator_load.rollout_timings(idle)
        count = int(knob("BENCH_OPERATOR_RESOURCES", 200))
        budget = knob("BENCH_OPERATOR_SECONDS", 300)
        results["operator_scale"] = operator_load.many_resources(count, budget, idle)
    if "e2e" in only:
        print("e2e: the operator driving the real service on the real control plane ...", flush=True)
        results["e2e_cluster"] = e2e_cluster.scenarios()


async def _database_sections(only: set[str], results: Results, queries: list[str]) -> None:
    seconds = knob("BENCH_SECONDS", 10)
    corpus, _, _ = quality.scifact_paths()
    server = database_url()
    url = for_embedding_model(server, LOCAL_EMBEDDING_MODEL)
    await ensure_database(url)
    local = local_embedder(LOCAL_EMBEDDING_MODEL, default_onnx_dir())
    vectors = [local.encode([q])[0] for q in queries[:200]]
    with serving(url) as service:
        results["machine"] = {**results["machine"], **await machine.describe_database(url)}
        if "quality" in only or "search" in only or "ask" in only:
            print("quality: SciFact train through `ragcorp eval` (ingests the corpus on the first run) ...", flush=True)
            results["quality"] = await asyncio.to_thread(quality.evaluate, service)  # the CLI runs its own loop
        if "ingest" in only:
            print("ingest: pipeline vs bare embedder ...", flush=True)
            results["ingest"] = await ingest.measure(service, corpus, local, int(knob("BENCH_INGEST_DOCS", 1000)))
        if "search" in only:
            print("search: at the SciFact size ...", flush=True)
            results["search_small"] = await _search(url, service, queries, vectors, local, seconds)
        if "ask" in only:
            print("ask: 32 concurrent clients ...", flush=True)
            results["ask"] = await ask_load.measure(service, queries, seconds)
            print("ask: what the offline answerer says for 200 SciFact questions ...", flush=True)
            results["answers"] = await answers.measure(service, queries[:200], local)
            print(answers.line(results["answers"]), flush=True)
            print("ask: does the offline answerer know when the documents do not answer? ...", flush=True)
            results["answer_calibration"] = await _answer_calibration(service, local)
            print("\n".join(answer_calibration.lines(results["answer_calibration"])), flush=True)
        if "edge" in only:
            print("edge: /healthz while hostile uploads parse ...", flush=True)
            results["edge"] = await asyncio.to_thread(edge.measure, service)
    if "edge" in only:
        await _hostile_probes(server, results)
    if "quality" in only:
        await _quality_of_other_models(server, results)
    await _large_sections(only, results, url, queries, vectors, local, seconds)


async def _hostile_probes(server: str, results: Results) -> None:
    """In a database and service of their own, with API keys, as the probe found the service."""
    print("edge: the second probe's hostile requests, rerun ...", flush=True)
    url = for_embedding_model(with_database(server, "ragcorp_bench_probes"), LOCAL_EMBEDDING_MODEL)
    await ensure_database(url)
    deadline = 10.0
    environment = {"API_KEYS": f"{hostile_probes.KEY}:ingest,ask,metrics", "RATE_LIMIT_RPS": "1000000"}
    with serving(url, REQUEST_BODY_DEADLINE_SECONDS=str(deadline), **environment) as service:
        results["hostile_probes"] = await hostile_probes.measure(service, url, deadline)
    print("\n".join(hostile_probes.lines(results["hostile_probes"])), flush=True)


async def _answer_calibration(service: str, local: LocalEmbedder) -> dict[str, Any]:
    """SciFact's first 300 train claims with and without their evidence, then the example handbook."""
    _, queries_file, qrels_file = quality.scifact_paths()
    claims = dict(list(read_queries(queries_file).items())[: int(knob("BENCH_CALIBRATION_QUESTIONS", 300))])
    return {
        "scifact": await answer_calibration.scifact(service, claims, read_qrels(qrels_file), local),
        "handbook": await answer_calibration.handbook(service),
    }


async def _large_sections(
    only: set[str],
    results: Results,
    url: str,
    queries: list[str],
    vectors: list[Any],
    local: LocalEmbedder,
    seconds: float,
) -> None:
    large = with_database(url, f"{database_name(url)}_large")
    if "search" in only or "million" in only:
        # A copy (made once, then reused) grows to the large size; the small database stays SciFact only.
        await ensure_database(large, template=database_name(url))
        target = int(knob("BENCH_CHUNKS", 100_000))
        print(f"search: growing a copy to {target} chunks ...", flush=True)
        grown = await synthetic.grow_to(large, target)
        if grown["added"] or "synthetic" not in results:  # else keep the figures of the run that built it
            results["synthetic"] = grown
    if "search" in only:
        with serving(large) as service:
            results["search_large"] = await _search(large, service, queries, vectors, local, seconds)
        print("search: the store path at the large size (written, then rolled back) ...", flush=True)
        results["store_large"] = await synthetic.store_rate(large)
    if "million" in only:
        million = with_database(url, f"{database_name(url)}_million")
        await ensure_database(million, template=database_name(large))
        target = int(knob("BENCH_MILLION_CHUNKS", 1_000_000))
        print(f"million: growing a copy of the large corpus to {target} chunks (once; ~16 min) ...", flush=True)
        started = time.perf_counter()
        build = await synthetic.grow_to(million, target)
        build["seconds"] = round(time.perf_counter() - started)
        results["million"] = {
            "build": build,
            "sizes": await synthetic.sizes(million),
            "database_only": await search_latency.in_database(million, queries, vectors, seconds),
            "keyword_against_full": await search_latency.keyword_against_full(
                million, queries[:200], limits=(10,), in_sql=10
            ),
            "store": await synthetic.store_rate(million),
            "tantivy_peer": await tantivy_peer.compare(million, queries[:300]),
        }


async def _quality_of_other_models(server: str, results: Results) -> None:
    """SciFact scored with each other model of BENCH_QUALITY_MODELS, in a database of its own."""
    models = [m for m in os.environ.get("BENCH_QUALITY_MODELS", "").split(",") if m and m != LOCAL_EMBEDDING_MODEL]
    by_model = {**results.get("quality_by_model", {}), LOCAL_EMBEDDING_MODEL: results["quality"]}
    for model in models:
        url = for_embedding_model(server, model)
        await ensure_database(url)
        print(f"quality: SciFact train with EMBEDDING_MODEL={model} ...", flush=True)
        with serving(url, EMBEDDING_MODEL=model) as service:
            by_model[model] = await asyncio.to_thread(quality.evaluate, service)
    results["quality_by_model"] = by_model


async def _search(
    url: str, service: str, queries: list[str], vectors: list[Any], embedder: LocalEmbedder, seconds: float
) -> dict[str, Any]:
    connection = await asyncpg.connect(url)
    try:
        chunks = int(await connection.fetchval("SELECT count(*) FROM chunks"))
    finally:
        await connection.close()
    return {
        "chunks": chunks,
        "http": await search_latency.over_http(service, queries, seconds),
        "database_only": await search_latency.in_database(url, queries, vectors, seconds),
        # the full query in SQL takes ~0.2 s a query at 11k chunks, ~2 s at 100k: a sample of them
        "keyword_against_full": await search_latency.keyword_against_full(url, queries[:200], in_sql=30),
        "query_embedding": search_latency.query_embedding(embedder, queries),
        "plans": await search_latency.plans(url, queries[0], vectors[0]),
        "tantivy_peer": await tantivy_peer.compare(url, queries),
    }


def main() -> None:
    only = set(filter(None, os.environ.get("BENCH_ONLY", ",".join(SECTIONS)).split(",")))
    results = asyncio.run(run(only))
    from bench.report import table

    print(table(results))
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
