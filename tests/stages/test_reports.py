"""Briefing and dashboard rendering, and the package's public names."""

from __future__ import annotations

import datetime as dt
import json
from html.parser import HTMLParser

import attrs
import pandas as pd
import pyarrow as pa

import stages.analytics as analytics
from stages.analytics import (
    DISCLAIMER,
    SYNTHETIC_BANNER,
    DashboardInputs,
    DashboardSymbol,
    SymbolBriefing,
    build_briefing,
    compute_derived,
    compute_flow,
    render_dashboard,
    run_checks,
)
from stages.analytics.checks import CheckResult
from stages.jobs.reports import _by_symbol
from stages.registry import DASHBOARD_VIEWS, OPTIONS_SNAPSHOT_FILE
from tests.stages.conftest import SESSION

NOW = dt.datetime(2025, 1, 3, 22, 0, tzinfo=dt.UTC)


def _briefing_input(flow_sessions, derived_snapshot, candles) -> SymbolBriefing:
    previous, current = flow_sessions
    derived = compute_derived(derived_snapshot, candles, None, symbol="XYZ", as_of=SESSION).to_pylist()[0]
    warn = CheckResult(asset_key=OPTIONS_SNAPSHOT_FILE, check_name="snapshot_null_iv_ratio", severity="warn",
                       status="fail", scope_key="XYZ|2025-01-03", metrics={}, message="40% of live contracts lack IV")
    return SymbolBriefing(symbol="XYZ", as_of=SESSION, derived=derived, previous_spot=98.0,
                          flow=compute_flow(current, previous), checks=(warn,), warnings=("candles are a day old",))


def test_briefing_banner_numbers_and_payload(flow_sessions, derived_snapshot, candles):
    item = _briefing_input(flow_sessions, derived_snapshot, candles)
    markdown, payload = build_briefing(SESSION, [item], synthetic=True, generated_at=NOW)
    head = markdown.splitlines()[:4]
    assert any("SYNTHETIC DATA" in line for line in head)
    assert "not financial advice" in markdown and "2025-01-03" in markdown
    # spot 100 vs previous 98: +2.00 (+2.04%); ATM IV 21.0%; EM 4.8%; walls 105/95; gamma peak 100
    assert "100.00, change +2.00 (+2.04%)" in markdown
    assert "ATM IV 21.0%" in markdown and "±4.8%" in markdown
    assert "call 105.00, put 95.00; gamma peak 100.00" in markdown
    # top building by strike is call 100 (+150 contracts, $37.5k: the expired C100 E0 is not in it);
    # top unwinding call 105 (-$3.5k); the pair is Thursday -> Friday (1 session)
    assert "### Flow by strike vs 2025-01-02 (1 session)" in markdown
    section = markdown.split("**Building:**")[1]
    assert section.split("\n")[4].startswith("| call | 100.00 | +150 | +$37.5k | building |")
    assert "| call | 105.00 | -50 | -$3.5k |" in markdown.split("**Unwinding:**")[1]
    # what expired is one line apart: C100 E0, 80 contracts at 0.05 = $400
    assert "**Expired** (not flow): 1 contract, open interest 80 rolled off ($400)" in markdown
    assert "snapshot_null_iv_ratio (warn): 40% of live contracts lack IV" in markdown
    assert "candles are a day old" in markdown

    json.dumps(payload)  # JSON-ready: no NaN, dates or numpy scalars
    sym = payload["symbols"][0]
    assert payload["synthetic"] is True and payload["disclaimer"] == DISCLAIMER
    assert sym["change"] == 2.0 and abs(sym["volatility"]["atm_iv_near"] - 0.21) < 1e-12
    assert sym["positioning"]["call_wall"] == 105.0
    assert sym["flow"]["building"][0]["strike"] == 100.0 and sym["flow"]["building"][0]["option_type"] == "call"
    assert (sym["flow"]["from_date"], sym["flow"]["gap_sessions"], sym["flow"]["expired_contracts"]) == ("2025-01-02", 1, 1)
    assert sym["flow"]["expired_oi"] == 80 and sym["flow"]["expired_notional"] == 400


def test_briefing_without_synthetic_or_data():
    markdown, payload = build_briefing(SESSION, [SymbolBriefing(symbol="ABC")], synthetic=False, generated_at=NOW)
    assert "SYNTHETIC" not in markdown and "not financial advice" in markdown
    assert "no derived metrics for this session" in markdown
    assert payload["symbols"][0]["spot"] is None


class _Strict(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.text: list[str] = []
        self.svgs = 0

    def handle_starttag(self, tag, attrs):
        if tag == "svg":
            self.svgs += 1
        if tag not in {"meta", "br", "img", "hr", "input", "link"}:  # HTML void elements
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        pass

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}> (open: {self.stack[-3:]})"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def test_dashboard_is_self_contained_and_parses(flow_sessions, derived_snapshot):
    previous, current = flow_sessions
    history = pa.concat_tables([
        compute_derived(derived_snapshot, None, None, symbol="XYZ", as_of=SESSION),
    ])
    inputs = DashboardInputs(
        symbols=(DashboardSymbol(symbol="X<Z>&", history=history, flow=compute_flow(current, previous)),),
        health={
            "recent_runs": [{"job": "compute_flow", "status": "succeeded", "note": "<script>alert(1)</script>"}],
            "failed_checks": [{"check_name": "snapshot_crossed_quotes", "severity": "warn"}],
            "stale_assets": 1,
        },
    )
    page = render_dashboard(SESSION, inputs, synthetic=True, generated_at=NOW)
    lowered = page.lower()
    assert "http://" not in lowered and "https://" not in lowered and "<script" not in lowered
    assert "<link" not in lowered and "@import" not in lowered
    parser = _Strict()
    parser.feed(page)
    parser.close()
    assert parser.stack == []
    assert parser.svgs == 4  # price, ATM IV, put/call, flow by strike
    text = "".join(parser.text)
    assert SYNTHETIC_BANNER in text and "X<Z>&" in text  # escaped in the markup, intact as text
    assert "<script>alert(1)</script>" in text and "snapshot_crossed_quotes" in text
    assert all(r.status == "pass" for r in run_checks(DASHBOARD_VIEWS, page, session=SESSION, scope_key="ALL"))


def test_dashboard_without_data_or_banner():
    page = render_dashboard(SESSION, DashboardInputs(), synthetic=False, generated_at=NOW)
    assert "SYNTHETIC" not in page and "No ledger health information" in page


def test_public_names_resolve():
    for name in analytics.__all__:
        assert getattr(analytics, name) is not None
    assert len(set(analytics.__all__)) == len(analytics.__all__)


def test_reports_read_a_pandas_frame_as_they_read_its_arrow_table(flow_sessions, derived_snapshot, candles):
    item = _briefing_input(flow_sessions, derived_snapshot, candles)
    as_pandas = SymbolBriefing(symbol=item.symbol, as_of=item.as_of, derived=item.derived,
                               previous_spot=item.previous_spot, flow=item.flow.to_pandas(), checks=item.checks)
    assert (build_briefing(SESSION, [as_pandas], synthetic=False, generated_at=NOW)
            == build_briefing(SESSION, [attrs.evolve(item, warnings=())], synthetic=False, generated_at=NOW))
    history = compute_derived(derived_snapshot, candles, None, symbol="XYZ", as_of=SESSION)
    pages = [render_dashboard(SESSION, DashboardInputs(symbols=(DashboardSymbol(
        symbol="XYZ", history=convert(history), prices=convert(candles), flow=convert(item.flow)),)),
        synthetic=False, generated_at=NOW) for convert in (lambda t: t, lambda t: t.to_pandas())]
    assert pages[0] == pages[1]


def test_dashboard_draws_one_point_per_date_the_last_given_in_date_order(candles):
    tidy = candles.to_pandas()
    # Shuffled, with an earlier value repeated for two dates before the one that counts and a row without a date.
    stale = tidy.iloc[[3, 1]].assign(close=1.0)
    messy = pd.concat([stale, tidy.iloc[::-1], tidy.iloc[[0]].assign(date=None)], ignore_index=True)

    def page(prices):
        symbol = DashboardSymbol(symbol="XYZ", prices=prices)
        return render_dashboard(SESSION, DashboardInputs(symbols=(symbol,)), synthetic=False, generated_at=NOW)

    assert page(pa.Table.from_pandas(messy, preserve_index=False)) == page(candles)
    assert page(candles) != page(pa.Table.from_pandas(tidy.assign(close=tidy["close"] + 1), preserve_index=False))


def test_each_symbol_gets_its_own_rows_in_their_order():
    table = pa.table({"symbol": ["B", "A", "B", "C", "A"], "n": [1, 2, 3, 4, 5]})
    rows_of = _by_symbol(table)
    assert {s: rows_of(s)["n"].to_pylist() for s in "ABC"} == {"A": [2, 5], "B": [1, 3], "C": [4]}
    assert rows_of("Z").num_rows == 0 and rows_of("Z").schema == table.schema
    assert _by_symbol(table.slice(0, 0))("A").num_rows == 0
