"""The results as one Markdown table (the README keeps the latest)."""

from __future__ import annotations

from typing import Any

from bench.answer_calibration import lines as calibration_lines
from bench.answers import line as answers_line
from bench.tantivy_peer import row as tantivy_row


def _latency(row: dict[str, Any]) -> str:
    return f"{row['p50_ms']} / {row['p95_ms']} / {row['p99_ms']} ms, {row['per_second']}/s" + (
        f", {row['errors']} errors" if row.get("errors") else ""
    )


def _search_rows(label: str, search: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    size = f"{search['chunks']:,} chunks"
    for key, row in search["http"].items():
        mode, clients = key.split("/")
        rows.append((f"{label}: `/v1/search` {mode}, {clients} client(s), {size}", _latency(row)))
    rows.extend(_database_only_rows(label, size, search["database_only"]))
    rows.extend(_keyword_rows(label, size, search.get("keyword_against_full", {})))
    rows.append((f"{label}: query embedding alone", _latency(search["query_embedding"])))
    for query, used in search["plans"].items():
        rows.append((f"{label}: plan, {query}", ", ".join(used)))
    if "tantivy_peer" in search:
        rows.append(tantivy_row(label, search["tantivy_peer"]))
    return rows


def _database_only_rows(label: str, size: str, measured: dict[str, Any]) -> list[tuple[str, str]]:
    """Each mode's latency through the service's retrieval function, after the cache warmed as a replica's does."""
    rows = []
    for mode, row in measured.items():
        if mode == "cache_warmed":
            warmed = f"{row['terms']} words, {row['postings']:,} postings in {row['seconds']:.1f} s"
            rows.append((f"{label}: keyword cache warmed at start (as a replica does), {size}", warmed))
        else:
            rows.append((f"{label}: {mode} in the database only (query pre-embedded), {size}", _latency(row)))
    return rows


def _keyword_rows(label: str, size: str, against_full: dict[str, Any]) -> list[tuple[str, str]]:
    """Block-max keyword search vs every block read and vs the full query in SQL, on the same queries."""
    return [
        (
            f"{label}: keyword {top}, block-max vs every posting, {size}",
            f"identical rankings {row['identical']}/{row['queries']} to every block read, "
            f"{row['identical_in_sql']}/{row['queries_in_sql']} to the full query in SQL; "
            f"{row['blocks_read_share']:.0%} of the terms' blocks read, {row['rounds_mean']} round trips a query; "
            f"p50/p95 {row['block_max']['p50_ms']}/{row['block_max']['p95_ms']} ms vs "
            f"{row['every_block']['p50_ms']}/{row['every_block']['p95_ms']} ms (every block), "
            f"{row['sql']['p50_ms']}/{row['sql']['p95_ms']} ms (SQL)",
        )
        for top, row in against_full.items()
        if "every_block" in row  # figures from before the posting blocks had another shape
    ]


def _embedder_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    reference = result.get("reference", "torch")
    for model, row in result["backends"].items():
        agreement = (
            f", cosine to {reference} mean {row['cosine_mean']} min {row['cosine_min']}" if "cosine_mean" in row else ""
        )
        found.append(
            (
                f"embedder alone, {model}, {result['texts']} SciFact chunks",
                f"{row['chunks_per_s']} chunks/s; query p50 {row['query_p50_ms']} ms{agreement}",
            )
        )
    sizes = ", ".join(f"{size}: {rate}" for size, rate in result["default_chunks_per_s_by_batch_size"].items())
    found.append((f"embedder alone, {result['default']} by batch size (chunks/s)", sizes))
    found.append((f"embedder alone, {result['default']} vs {reference}", f"{result['ratio']:.2f}x"))
    return found


def _recipe_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    fp32 = result["recipes"]["fp32"]["scifact_train_vector_ndcg_at_10"]
    found = [
        (
            "int8 recipes: texts / queries for agreement with fp32",
            f"{result['texts']} / {result['queries']}; fp32 SciFact train vector nDCG@10 {fp32}",
        )
    ]
    for name, row in result["recipes"].items():
        if name != "fp32":
            found.append(
                (
                    f"int8 recipe: {name}",
                    f"cosine to fp32 mean {row['cosine_mean']} p01 {row['cosine_p01']} min {row['cosine_min']}, "
                    f"overlap@10 {row['overlap_at_10']}; SciFact train vector nDCG@10 "
                    f"{row['scifact_train_vector_ndcg_at_10']}; {row['size_mib']} MiB",
                )
            )
    return found


def rows(results: dict[str, Any]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    m = results.get("machine", {})
    found.append(
        (
            "machine",
            f"{m.get('cores')} cores, {m.get('memory_gib')} GiB; PostgreSQL {m.get('postgresql')}, "
            f"pgvector {m.get('pgvector')}, onnxruntime {m.get('onnxruntime')}, torch {m.get('torch')}, "
            f"Python {m.get('python')}",
        )
    )
    if e := results.get("embedder"):
        found.extend(_embedder_rows(e))
    if r := results.get("recipes"):
        found.extend(_recipe_rows(r))
    by_model = results.get("quality_by_model") or {"": results.get("quality", {})}
    for model, modes in by_model.items():
        for mode, row in modes.items():
            found.append(
                (
                    f"SciFact train, {mode}" + (f", {model}" if model else ""),
                    f"nDCG@10 {row['ndcg@10']:.4f}, Recall@100 {row['recall@100']:.4f}, MRR@10 {row['mrr@10']:.4f} "
                    f"({row['queries']:.0f} queries)",
                )
            )
    if ingest := results.get("ingest"):
        found.append(
            (
                f"ingest, {ingest['documents']} SciFact documents ({ingest['chunks']} chunks)",
                f"pipeline {ingest['pipeline_chunks_per_s']} chunks/s vs bare embedder "
                f"{ingest['embedder_chunks_per_s']} chunks/s ({ingest['pipeline_share_of_embedder']:.0%})",
            )
        )
    if (synthetic := results.get("synthetic")) and synthetic.get("added"):
        found.append(
            (
                f"ingest, synthetic to {synthetic['chunks']:,} chunks (store path, embedding excluded)",
                f"{synthetic['write_chunks_per_s']} chunks/s for {synthetic['added']:,} chunks",
            )
        )
    for label, key in (("small", "search_small"), ("large", "search_large")):
        if key in results:
            found.extend(_search_rows(label, results[key]))
    if store := results.get("store_large"):
        found.append(
            (
                f"store path at {store['at_chunks']:,} chunks (embedding excluded, rolled back)",
                f"{store['chunks_per_s']} chunks/s for {store['written']:,} chunks",
            )
        )
    if million := results.get("million"):
        size = f"{million['build']['chunks']:,} chunks"
        if million["build"].get("added"):
            found.append(
                (
                    f"million: build to {size} (store path)",
                    f"{million['build']['added']:,} chunks in {million['build']['seconds']} s, "
                    f"{million['build']['write_chunks_per_s']} chunks/s",
                )
            )
        found.append((f"million: sizes, {size}", ", ".join(f"{k} {v}" for k, v in million["sizes"].items())))
        found.extend(_database_only_rows("million", size, million["database_only"]))
        found.extend(_keyword_rows("million", size, million["keyword_against_full"]))
        if "tantivy_peer" in million:
            found.append(tantivy_row("million", million["tantivy_peer"]))
        store = million["store"]
        found.append((f"million: store path at {store['at_chunks']:,} chunks", f"{store['chunks_per_s']} chunks/s"))
    if ask := results.get("ask"):
        found.append(("`/v1/ask` extractive, 32 clients", _latency(ask)))
    if said := results.get("answers"):
        found.append(("offline answers to 200 SciFact questions (one client)", answers_line(said)))
    if calibration := results.get("answer_calibration"):
        found.extend(("offline answerer: knows when it doesn't know", line) for line in calibration_lines(calibration))
    for name, row in (results.get("edge") or {}).items():
        found.append(
            (
                f"edge: {name} upload ({row['bytes']:,} bytes) while `/healthz` is polled",
                f"upload {row['status']} after {row['seconds']} s; /healthz worst {row['healthz_worst_ms']} ms "
                f"over {row['healthz_polls']} polls",
            )
        )
    if r := results.get("operator_rollout"):
        found.append(
            (
                "operator, event-driven (resync 300 s)",
                f"apply -> children {r['apply_to_children_s']} s; apply -> Ready {r['apply_to_ready_s']} s; "
                f"smoke Job success -> Service switched {r['last_gate_to_switch_s']} s; a pass that changes "
                f"nothing: {r.get('steady_pass_requests')} requests; idle: {r.get('idle_requests_per_s')} requests/s",
            )
        )
    if s := results.get("operator_scale"):
        outcome = (
            f"all Ready after {s['all_ready_s']} s"
            if s.get("all_ready_s") is not None
            else f"{s['applied']} applied, {s['ready']} Ready within {s['window_s']} s (the emulator set the pace)"
        )
        found.append(
            (
                f"operator, {s['resources']} resources",
                f"{outcome}; operator {s['operator_cpu_cores']} CPU cores on average, "
                f"{s['operator_rss_mib']} MiB RSS at most, {s.get('operator_requests')} requests; idle: "
                f"{s.get('idle_requests_per_s_per_resource')} requests/s per resource, "
                f"{s.get('idle_cpu_cores')} CPU cores",
            )
        )
    if e2e := results.get("e2e_cluster"):
        verdict = f"{'passed' if e2e['passed'] else 'FAILED'} in {e2e['seconds']} s"
        found.append((f"real control plane (`make e2e-cluster`), {len(e2e['lines'])} e2e lines", verdict))
        build = e2e.get("build") or {}
        cold = f", cold {build['cold_seconds']} s" if "cold_seconds" in build else " (cold: BENCH_COLD_BUILD=1)"
        found.append(("control-plane binaries built", f"warm {build.get('warm_seconds')} s{cold}"))
        found.extend(
            (f"real control plane: {line.split(':', 1)[0]}", line.split(":", 1)[1].strip()) for line in e2e["lines"]
        )
    return found


def table(results: dict[str, Any]) -> str:
    lines = ["| benchmark | result |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in rows(results)]
    return "\n".join(lines)
