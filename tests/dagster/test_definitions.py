"""The definitions mirror the registry; partitions are the XNYS sessions; the schedule runs after
the close on sessions only; checks map severity; resources resolve like the CLI."""

from __future__ import annotations

import datetime as dt

import pytest

dg = pytest.importorskip("dagster")

from ledger.calendar import TradingCalendar  # noqa: E402
from ledger.errors import ConfigError, NotASessionError  # noqa: E402
from stages import registry  # noqa: E402
from stages.analytics.checks import CheckResult, checks_for  # noqa: E402

pytestmark = pytest.mark.dagster


@pytest.fixture(scope="module")
def defs():
    from frontends.dagster.defs import defs

    return defs


@pytest.fixture(scope="module")
def graph(defs):
    return defs.get_repository_def().asset_graph


def test_asset_keys_and_dependencies_are_the_registrys(graph) -> None:
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == set(registry.ASSET_KEYS)
    for spec in registry.ASSETS:
        node = graph.get(dg.AssetKey(spec.key))
        assert {p.to_user_string() for p in node.parent_keys} == {u.asset_key for u in spec.upstream}
        assert node.code_version == registry.job(spec.job).code_version
        assert node.pools == {"options_helper_duckdb"}


def test_lagged_upstream_is_the_previous_session(graph) -> None:
    from frontends.dagster.defs.partitions import SESSIONS

    lagged = [(s, u) for s in registry.ASSETS for u in s.upstream if u.lag]
    assert lagged, "the registry has a previous-session dependency (flow on snapshots)"
    for spec, upstream in lagged:
        node = graph.get(dg.AssetKey(spec.key))
        mapping = node.partition_mappings[dg.AssetKey(upstream.asset_key)]
        # 2025-01-10 (Fri) follows 2025-01-08: 2025-01-09 was a market closure (national day of mourning).
        mapped = mapping.get_upstream_mapped_partitions_result_for_partitions(
            SESSIONS.subset_with_partition_keys(["2025-01-10"]), SESSIONS, SESSIONS
        ).partitions_subset.get_partition_keys()
        assert sorted(mapped) == ["2025-01-08", "2025-01-10"]


def test_check_specs_are_the_stage_checks(graph) -> None:
    for spec in registry.ASSETS:
        node = graph.get(dg.AssetKey(spec.key))
        assert {c.name for c in node.check_keys} == {c.name for c in checks_for(spec.key)}


def test_partition_keys_of_2026_are_the_sessions() -> None:
    from frontends.dagster.defs.partitions import SESSIONS

    cal = TradingCalendar.xnys()
    keys = SESSIONS.get_partition_keys(current_time=dt.datetime(2027, 1, 4, tzinfo=dt.UTC))
    sessions = [d.isoformat() for d in cal.sessions_in_range(dt.date(2026, 1, 1), dt.date(2026, 12, 31))]
    assert [k for k in keys if k.startswith("2026-")] == sessions
    assert "2026-11-26" not in keys and "2026-07-03" not in keys  # Thanksgiving, Independence Day observed
    assert keys[0] == "2025-01-02"


def test_partition_start_is_configurable() -> None:
    from frontends.dagster.defs.partitions import partition_start, session_partitions

    assert partition_start({}) == dt.date(2025, 1, 2)
    assert partition_start({"OPTIONS_HELPER_DAGSTER_START": "2026-01-01"}) == dt.date(2026, 1, 1)
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        partition_start({"OPTIONS_HELPER_DAGSTER_START": "yesterday"})
    # A holiday start moves to the next session.
    parts = session_partitions(dt.date(2026, 1, 1))
    assert parts.get_partition_keys(current_time=dt.datetime(2026, 1, 10, tzinfo=dt.UTC))[:2] == [
        "2026-01-02", "2026-01-05"]


def test_session_of_rejects_non_sessions() -> None:
    from frontends.dagster.defs.partitions import session_of

    assert session_of("2026-11-24") == dt.date(2026, 11, 24)
    with pytest.raises(NotASessionError):
        session_of("2026-11-26")


def test_jobs_follow_the_daily_order(defs) -> None:
    from frontends.dagster.defs.jobs import DAILY_JOB_NAME, WRITER_TAGS

    repo = defs.get_repository_def()
    daily = repo.get_job(DAILY_JOB_NAME)
    assert daily.tags.items() >= WRITER_TAGS.items()
    for name in registry.JOB_NAMES:
        job = repo.get_job(name)
        assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == {registry.job(name).asset_key}
    assert daily.executor_def.name == "in_process"


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (dt.datetime(2026, 11, 24, 18, 0), dt.date(2026, 11, 24)),  # a session, after the close
        (dt.datetime(2026, 11, 24, 16, 10), "not complete"),  # before close + 30 min
        (dt.datetime(2026, 11, 26, 18, 0), "not an XNYS session"),  # Thanksgiving
        (dt.datetime(2026, 11, 27, 13, 45), dt.date(2026, 11, 27)),  # early close at 13:00
    ],
)
def test_schedule_runs_after_the_close_on_sessions(oh_env, when, expected) -> None:
    from zoneinfo import ZoneInfo

    from frontends.dagster.defs.schedules import daily_after_close, session_to_run

    now = when.replace(tzinfo=ZoneInfo("America/New_York"))
    outcome = session_to_run(now)
    if isinstance(expected, dt.date):
        assert outcome == expected
        request = daily_after_close(dg.build_schedule_context(scheduled_execution_time=now))
        assert isinstance(request, dg.RunRequest) and request.partition_key == expected.isoformat()
    else:
        assert isinstance(outcome, str) and expected in outcome


def test_schedule_is_after_the_close_in_new_york(defs) -> None:
    schedule = defs.get_repository_def().get_schedule_def("daily_after_close")
    assert schedule.execution_timezone == "America/New_York"
    assert schedule.cron_schedule.endswith("1-5")
    assert schedule.job_name == "daily"


def test_check_results_map_severity_and_aggregate_symbols() -> None:
    from frontends.dagster.defs.checks import check_results

    key = registry.CANDLES_DAILY
    warn = next(c for c in checks_for(key) if c.severity == "warn")
    error = next(c for c in checks_for(key) if c.severity == "error")
    results = [
        CheckResult(asset_key=key, check_name=warn.name, severity="warn", status="fail", scope_key="AAPL",
                    metrics={"newest": dt.date(2026, 11, 20)}, message="stale"),
        CheckResult(asset_key=key, check_name=warn.name, severity="warn", status="pass", scope_key="SPY",
                    metrics={}, message="fresh"),
        CheckResult(asset_key=key, check_name=error.name, severity="error", status="skip", scope_key="AAPL",
                    metrics={"reason": "no_rows"}, message="check skipped (no_rows)"),
    ]
    out = {r.check_name: r for r in check_results(key, results)}
    assert set(out) == {c.name for c in checks_for(key)}  # one per spec, always
    assert out[warn.name].passed is False and out[warn.name].severity == dg.AssetCheckSeverity.WARN
    assert out[warn.name].metadata["failed_scopes"].value == "AAPL"
    assert out[warn.name].metadata["by_scope"].value["AAPL"]["metrics"] == {"newest": "2026-11-20"}
    assert out[error.name].passed is True and out[error.name].severity == dg.AssetCheckSeverity.ERROR
    assert out[error.name].metadata["status"].value == "skip"


def test_resources_resolve_like_the_cli(oh_env) -> None:
    from frontends.dagster.defs.resources import LedgerResource, ProviderResource, UniverseResource
    from ledger.config import get_duckdb_path

    ledger = LedgerResource()
    assert ledger.path() == get_duckdb_path()
    settings = ledger.settings(provider=ProviderResource().resolved_name())
    assert str(settings.duckdb_path) == oh_env["OPTIONS_HELPER_DUCKDB_PATH"]
    assert settings.provider == "synthetic"
    assert UniverseResource().resolve(settings) is None  # the runner's default: the settings' watchlist
    assert settings.watchlist() == ("AAPL", "SPY")
    assert UniverseResource(symbols=["msft", " aapl"]).resolve(settings) == ("AAPL", "MSFT")
    with pytest.raises(ConfigError):
        ProviderResource(name="bogus").resolved_name()
    # Nothing that could hold a credential is configurable.
    fields = set(LedgerResource.model_fields) | set(ProviderResource.model_fields) | set(UniverseResource.model_fields)
    assert not {f for f in fields if "key" in f or "secret" in f or "token" in f}
