"""The `ragcorp` client against the service served by real uvicorn on loopback."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragcorp_service.app.main import create_app
from ragcorp_service.client.cli import main
from ragcorp_service.settings import Settings
from tests.support.corpus import DOCUMENTS
from tests.support.servers import serving


@pytest.fixture
def service_url(settings: Settings) -> Iterator[str]:
    with serving(create_app(settings)) as url:
        yield url


def write_beir(folder: Path) -> None:
    folder.mkdir()
    with (folder / "corpus.jsonl").open("w") as corpus:
        for number, document in enumerate(DOCUMENTS):
            corpus.write(
                json.dumps({"_id": f"doc{number}", "title": document["title"], "text": document["text"]}) + "\n"
            )
    (folder / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "viscous magma explosive eruption"})
        + "\n"
        + json.dumps({"_id": "q2", "text": "gradient of the loss for each weight"})
        + "\n"
    )
    (folder / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tdoc1\t1\nq2\tdoc2\t1\n")


def test_ingest_a_folder_then_ask(service_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notes = tmp_path / "notes"
    (notes / "deep").mkdir(parents=True)
    (notes / "tides.md").write_text("# Tides\n\nThe moon's gravity raises two ocean tides every day.")
    (notes / "deep" / "reefs.txt").write_text("Coral reefs are built by colonies of tiny polyps.")
    (notes / "ignored.bin").write_bytes(b"\x00\x01")
    assert main(["--url", service_url, "ingest", str(notes), "--collection", "notes"]) == 0
    captured = capsys.readouterr()
    assert "ingested 2 new and 0 already stored" in captured.out
    assert "it/s" not in captured.err and "%|" not in captured.err, "no progress bar when not on a terminal"
    assert main(["--url", service_url, "ingest", str(notes), "--collection", "notes"]) == 0
    assert "ingested 0 new and 2 already stored" in capsys.readouterr().out

    assert main(["--url", service_url, "ask", "What raises the ocean tides?"]) == 0
    out = capsys.readouterr().out
    assert "moon's gravity" in out and "[1] Tides" in out

    assert main(["--url", service_url, "ask", "Who builds coral reefs?", "--stream"]) == 0
    assert "polyps" in capsys.readouterr().out


def test_beir_ingest_and_eval(service_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset = tmp_path / "tiny"
    write_beir(dataset)
    assert main(["--url", service_url, "ingest", "--beir", str(dataset), "--batch-size", "2"]) == 0
    assert "ingested 3 new" in capsys.readouterr().out
    assert (
        main(
            [
                "--url",
                service_url,
                "eval",
                "--beir",
                str(dataset),
                "--queries",
                str(dataset / "queries.jsonl"),
                "--qrels",
                str(dataset / "qrels.tsv"),
                "--json",
            ]
        )
        == 0
    )
    output = capsys.readouterr()
    assert "corpus: 3 documents ingested" in output.err  # into the collection named after the folder
    report = json.loads(output.out)
    assert set(report) == {"hybrid", "vector", "keyword"}
    for mode, row in report.items():
        assert row["queries"] == 2
        assert row["ndcg@10"] == pytest.approx(1.0), mode


def test_errors_are_one_readable_line(service_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", service_url, "search", "anything", "--top-k", "5000"]) == 1
    assert capsys.readouterr().err == (
        "ragcorp: POST /v1/search: HTTP 422: top_k: Input should be less than or equal to 100 (MAX_TOP_K)\n"
    )
    assert main(["--url", "http://127.0.0.1:9", "search", "anything"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ragcorp: cannot reach http://127.0.0.1:9: ") and err.count("\n") == 1
    assert main(["--url", service_url, "ingest", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err == f"ragcorp: no such file or directory: {tmp_path / 'missing'}\n"


def test_ingest_continues_past_a_refused_file_and_names_it(
    service_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-tides.md").write_text("# Tides\n\nThe moon's gravity raises two ocean tides every day.")
    (tmp_path / "b-empty.md").write_text("   \n")
    (tmp_path / "c-reefs.txt").write_text("Coral reefs are built by colonies of tiny polyps.")
    assert main(["--url", service_url, "ingest", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"stored          {tmp_path / 'a-tides.md'}" in out
    assert f"refused         {tmp_path / 'b-empty.md'}: b-empty.md: no text could be extracted" in out
    assert f"stored          {tmp_path / 'c-reefs.txt'}" in out
    assert re.search(r"ingested 2 new and 0 already stored documents in [0-9.]+s; 1 file refused\n$", out)

    assert main(["--url", service_url, "ingest", str(tmp_path), "--fail-fast"]) == 1
    assert capsys.readouterr().err.endswith("HTTP 422: b-empty.md: no text could be extracted\n")


def test_the_service_and_key_come_from_the_environment_or_either_side_of_the_command(
    service_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = capsys.readouterr().out
    assert "RAGCORP_URL" in help_text and "RAGCORP_API_KEY" in help_text
    assert main(["search", "tides", "--url", service_url]) == 0
    monkeypatch.setenv("RAGCORP_URL", service_url)
    assert main(["search", "tides"]) == 0
    assert main(["search", "tides", "--url", "http://127.0.0.1:9"]) == 1


def test_smoke_test_passes_against_a_healthy_service(
    service_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ragcorp_service.cli import main as service_cli
    from ragcorp_service.db.migrations import head_revision

    assert service_cli(["smoke", "--url", service_url, "--expect-schema", head_revision()]) == 0
    assert capsys.readouterr().out.startswith("passed")
    assert service_cli(["smoke", "--url", service_url, "--expect-schema", "9999"]) == 1
    assert "expected 9999" in capsys.readouterr().out
    assert service_cli(["smoke", "--url", "http://127.0.0.1:9"]) == 1


def test_the_client_waits_out_rate_limits(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    limited = settings.model_copy(update={"rate_limit_rps": 2.0, "rate_limit_burst": 1})
    with serving(create_app(limited)) as url:
        for _ in range(3):  # each after the first is answered 429 first, then retried
            assert main(["--url", url, "search", "anything", "--mode", "keyword"]) == 0
    assert "HTTP 429" not in capsys.readouterr().err
