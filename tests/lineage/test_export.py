"""`options-helper lineage export` posts OpenLineage RunEvents to a local HTTP server on 127.0.0.1:
every event parses back with the openlineage client's own types (and re-serialises to the same
JSON), they arrive in seq order, each run's start and end exactly once across exports, with the
registry's jobs and assets, the Dagster parent, and the checks as data-quality assertions."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("openlineage.client")

import duckdb

from frontends.cli.app import main
from stages import registry

pytestmark = pytest.mark.lineage

SESSION = "2026-11-23"
SYMBOLS = ("AAPL", "SPY")


# -- the client's own types, from JSON ----------------------------------------------------------------
def _facet(cls: type, doc: dict[str, Any], **nested: Any) -> Any:
    # _schemaURL is the class's own (not an argument): the round trip in the tests compares it.
    fields = {k: v for k, v in doc.items() if k not in ("_producer", "_schemaURL")}
    return cls(**{**fields, **nested}, producer=doc["_producer"])


def parse_facets(docs: dict[str, Any] | None) -> dict[str, Any]:
    from openlineage.client.facet_v2 import (
        data_quality_assertions_dataset as dqa,
    )
    from openlineage.client.facet_v2 import (
        datasource_dataset,
        error_message_run,
        job_type_job,
        nominal_time_run,
        output_statistics_output_dataset,
        parent_run,
        processing_engine_run,
        tags_run,
    )

    out = {}
    for name, doc in (docs or {}).items():
        if name == "parent":
            out[name] = _facet(parent_run.ParentRunFacet, {k: v for k, v in doc.items() if k not in ("run", "job")},
                               run=parent_run.Run(**doc["run"]), job=parent_run.Job(**doc["job"]))
        elif name == "tags":
            out[name] = _facet(tags_run.TagsRunFacet, {"_producer": doc["_producer"], "_schemaURL": doc["_schemaURL"]},
                               tags=[tags_run.TagsRunFacetFields(**t) for t in doc["tags"]])
        elif name == "dataQualityAssertions":
            out[name] = _facet(dqa.DataQualityAssertionsDatasetFacet,
                               {"_producer": doc["_producer"], "_schemaURL": doc["_schemaURL"]},
                               assertions=[dqa.Assertion(**a) for a in doc["assertions"]])
        else:
            cls = {"nominalTime": nominal_time_run.NominalTimeRunFacet,
                   "processing_engine": processing_engine_run.ProcessingEngineRunFacet,
                   "errorMessage": error_message_run.ErrorMessageRunFacet,
                   "jobType": job_type_job.JobTypeJobFacet,
                   "datasource": datasource_dataset.DatasourceDatasetFacet,
                   "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet}[name]
            out[name] = _facet(cls, doc)
    return out


def parse_event(doc: dict[str, Any]) -> Any:
    """A RunEvent built from its JSON with the client's classes (their validators run)."""
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState

    return RunEvent(
        eventType=RunState(doc["eventType"]), eventTime=doc["eventTime"], producer=doc["producer"],
        run=Run(runId=doc["run"]["runId"], facets=parse_facets(doc["run"].get("facets"))),
        job=Job(namespace=doc["job"]["namespace"], name=doc["job"]["name"], facets=parse_facets(doc["job"].get("facets"))),
        inputs=[InputDataset(namespace=d["namespace"], name=d["name"], facets=parse_facets(d.get("facets")),
                             inputFacets=parse_facets(d.get("inputFacets"))) for d in doc.get("inputs", [])],
        outputs=[OutputDataset(namespace=d["namespace"], name=d["name"], facets=parse_facets(d.get("facets")),
                               outputFacets=parse_facets(d.get("outputFacets"))) for d in doc.get("outputs", [])],
    )


# -- a local lineage endpoint -------------------------------------------------------------------------
class Collector:
    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.accept: int | None = None  # refuse every post after this many (None: accept all)
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if collector.accept is not None and len(collector.posts) >= collector.accept:
                    self.send_response(400)
                    self.end_headers()
                    return
                collector.posts.append((self.path, json.loads(body)))
                self.send_response(201)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def take(self) -> list[dict[str, Any]]:
        posts, self.posts = self.posts, []
        assert {p for p, _ in posts} <= {"/api/v1/lineage"}
        return [doc for _, doc in posts]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.close()


# -- a ledger with every kind of run ------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import ledger
    import stages
    from ledger.config import load_settings

    root = tmp_path_factory.mktemp("lineage")
    config = root / "options-helper.toml"
    config.write_text("[watchlists]\ndefault = [" + ", ".join(f'"{s}"' for s in SYMBOLS) + "]\n")
    env = {"OPTIONS_HELPER_CONFIG": str(config), "OPTIONS_HELPER_DUCKDB_PATH": str(root / "oh.duckdb"),
           "OPTIONS_HELPER_DATA_ROOT": str(root / "data"), "OPTIONS_HELPER_PROVIDER": "synthetic"}
    parent = str(uuid.uuid4())
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        settings = load_settings()
        day = stages.run_daily(as_of=dt.date.fromisoformat(SESSION), settings=settings, triggered_by="cli")
        assert day.ok
        dag = stages.run_job(registry.INGEST_CANDLES, as_of=dt.date.fromisoformat("2026-11-24"), settings=settings,
                             triggered_by="dagster", parent_run_id=parent)
        assert dag.ok
    led = ledger.open(root / "oh.duckdb")
    with pytest.raises(RuntimeError), led.run(registry.COMPUTE_FLOW, triggered_by="python", partition_key=SESSION):
        raise RuntimeError("the provider went away")
    stuck = led.run(registry.COMPUTE_DERIVED, triggered_by="cli", partition_key=SESSION, lease_seconds=1)
    stuck.__enter__()
    assert led.reap(now=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))  # -> run_abandoned
    return {"root": root, "db": root / "oh.duckdb", "data": root / "data", "parent": parent,
            "dagster_run": dag.run_id, "led": led}


def expected_sequence(led: Any, since: int = 0) -> list[tuple[str, str]]:
    """(run id, event type) of every run start and end after ``since``, in seq order."""
    names = {"run_started": "START", "run_succeeded": "COMPLETE", "run_failed": "FAIL", "run_abandoned": "ABORT"}
    return [(s.event.run_id, names[s.event_type]) for s in led.events(since=since) if s.event_type in names]


def run_export(world: dict[str, Any], capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    """Exit code and the --json document (or {"stderr": ...} when nothing was printed)."""
    code = main(["--duckdb-path", str(world["db"]), "--data-root", str(world["data"]), "lineage", "export", *args,
                 "--json"])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip() else {"stderr": captured.err})


def test_events_parse_back_with_the_clients_types_in_seq_order_once_each(world, collector, capsys, tmp_path) -> None:
    from openlineage.client.serde import Serde

    state = tmp_path / "http.cursor.json"
    code, doc = run_export(world, capsys, "--url", collector.url, "--state", str(state))
    assert code == 0, doc
    posted = collector.take()
    parsed = [parse_event(d) for d in posted]
    # The client's types hold everything that was sent: re-serialised, the same JSON.
    assert [Serde.to_dict(e) for e in parsed] == posted
    assert [(e.run.runId, e.eventType.value) for e in parsed] == expected_sequence(world["led"])
    assert doc["cursor"] == world["led"].last_seq() == json.loads(state.read_text())["cursor"]
    assert doc["emitted_total"] == len(parsed)
    # A second export sends nothing: each event once.
    code, again = run_export(world, capsys, "--url", collector.url, "--state", str(state))
    assert code == 0 and again["emitted_total"] == 0 and collector.take() == []


def test_jobs_datasets_parent_checks_and_terminal_states(world, collector, capsys, tmp_path) -> None:
    code, _ = run_export(world, capsys, "--url", collector.url, "--state", str(tmp_path / "s.json"),
                         "--namespace", "desk")
    assert code == 0
    events = [parse_event(d) for d in collector.take()]
    db, data = world["db"].resolve(), world["data"].resolve()
    assert {e.job.name for e in events} <= set(registry.JOB_NAMES) and {e.job.namespace for e in events} == {"desk"}
    for e in events:
        spec = registry.asset(registry.job(e.job.name).asset_key)
        assert [o.name for o in e.outputs] == [spec.key]
        assert sorted(i.name for i in e.inputs) == sorted({u.asset_key for u in spec.upstream})
        for d in [*e.inputs, *e.outputs]:
            want = f"file://{data}" if registry.asset(d.name).kind == "file" else f"duckdb://{db}"
            assert d.namespace == want
    by_run = {(e.run.runId, e.eventType.value): e for e in events}
    # Dagster-triggered: the parent run facet names the Dagster run.
    for state in ("START", "COMPLETE"):
        parent = by_run[(world["dagster_run"], state)].run.facets["parent"]
        assert parent.run.runId == world["parent"] and parent.job.namespace == "dagster"
    assert all("parent" not in e.run.facets for e in events if e.run.runId != world["dagster_run"])
    assert {e.eventType.value for e in events} == {"START", "COMPLETE", "FAIL", "ABORT"}
    failed = next(e for e in events if e.eventType.value == "FAIL")
    assert "the provider went away" in failed.run.facets["errorMessage"].message
    # Checks: one assertion per check and symbol, as meta.asset_checks holds them for the run.
    with duckdb.connect(str(world["db"]), read_only=True) as con:
        for e in events:
            if e.eventType.value != "COMPLETE":
                continue
            rows = con.execute("select check_name, scope_key, status from meta.asset_checks where run_id = ?",
                               [e.run.runId]).fetchall()
            facet = e.outputs[0].facets.get("dataQualityAssertions")
            got = [] if facet is None else [(a.assertion, a.params["scope"], a.params["status"]) for a in facet.assertions]
            assert sorted(got) == sorted(rows)
            if facet is not None:
                assert all(a.success == (a.params["status"] != "fail") for a in facet.assertions)
            [(rows_written,)] = con.execute("select coalesce(sum(rows_inserted), 0) from meta.ingestion_run_assets "
                                            "where run_id = ? and status = 'success'", [e.run.runId]).fetchall()
            assert e.outputs[0].outputFacets["outputStatistics"].rowCount == rows_written


def test_the_cursor_continues_with_new_runs_and_since_overrides_it(world, collector, capsys, tmp_path) -> None:
    import shutil

    import ledger

    db = tmp_path / "copy.duckdb"
    shutil.copy(world["db"], db)
    copy = {**world, "db": db}
    state = tmp_path / "c.json"
    assert run_export(copy, capsys, "--url", collector.url, "--state", str(state))[0] == 0
    head = len(collector.take())
    led = ledger.open(db)
    mark = led.last_seq()
    with led.run(registry.BUILD_BRIEFING, triggered_by="python", partition_key=SESSION, scope_keys=["ALL"]) as run:
        run.complete([run.materialized(registry.BRIEFING_MARKDOWN, SESSION, "ALL", rows=1, asset_kind="file",
                                       path="reports/x.md", sha256="0" * 64, bytes=10)])
    assert run_export(copy, capsys, "--url", collector.url, "--state", str(state))[0] == 0
    new = [parse_event(d) for d in collector.take()]
    assert [(e.run.runId, e.eventType.value) for e in new] == expected_sequence(led, since=mark)
    assert new[-1].outputs[0].outputFacets["outputStatistics"].fileCount == 1
    # --since re-sends what follows it, whatever the state says.
    assert run_export(copy, capsys, "--url", collector.url, "--state", str(state), "--since", "0")[0] == 0
    assert len(collector.take()) == head + len(new)


def test_a_refused_event_stops_the_export_and_a_rerun_sends_the_rest_once(world, collector, capsys, tmp_path) -> None:
    state = tmp_path / "fail.json"
    collector.accept = 5  # the endpoint takes five events, then answers 400
    code, doc = run_export(world, capsys, "--url", collector.url, "--state", str(state))
    assert code == 14 and "rerun the same command" in doc["stderr"]
    first = [(d["run"]["runId"], d["eventType"]) for d in collector.take()]
    assert first == expected_sequence(world["led"])[:5]
    collector.accept = None
    assert run_export(world, capsys, "--url", collector.url, "--state", str(state))[0] == 0
    rest = [(d["run"]["runId"], d["eventType"]) for d in collector.take()]
    assert first + rest == expected_sequence(world["led"])  # nothing lost, nothing twice


def test_the_file_transport_writes_one_event_per_line_and_keeps_its_cursor_beside_it(world, capsys, tmp_path) -> None:
    out = tmp_path / "lineage" / "events.jsonl"
    code, doc = run_export(world, capsys, "--file", str(out))
    assert code == 0
    assert Path(doc["state_file"]) == out.with_name("events.jsonl.cursor.json")
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(e.run.runId, e.eventType.value) for e in map(parse_event, lines)] == expected_sequence(world["led"])
    assert run_export(world, capsys, "--file", str(out))[0] == 0
    assert len(out.read_text().splitlines()) == len(lines)


def test_a_cursor_past_the_end_and_bad_arguments_are_errors(world, capsys, tmp_path) -> None:
    code, doc = run_export(world, capsys, "--file", str(tmp_path / "x.jsonl"), "--since", "999999")
    assert code == 4 and "before the export's cursor" in doc["stderr"]
    code, doc = run_export(world, capsys)
    assert code == 2 and "exactly one of --url URL or --file PATH" in doc["stderr"]
    code, _ = run_export(world, capsys, "--url", "ftp://nowhere", "--state", str(tmp_path / "y.json"))
    assert code == 2
