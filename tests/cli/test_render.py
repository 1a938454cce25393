"""Tables for people: a bold title, a header, one line per row with every value whole and the
columns aligned (so run ids can be copied and lines grepped); long cells are cut, not folded."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from frontends.cli import render

RUN_ID = "01a24a5e-01df-7565-b70c-86c5e5cbd07b"


@pytest.fixture()
def out(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    buf = io.StringIO()
    monkeypatch.setitem(render._CONSOLES, "out", Console(file=buf, soft_wrap=True, width=40, color_system=None))
    return buf


def test_one_line_per_row_with_aligned_columns_and_whole_values(out: io.StringIO) -> None:
    render.table("Runs", [{"run_id": RUN_ID, "status": "success", "rows": 12},
                          {"run_id": "short", "status": "failed", "rows": None}], ["run_id", "status", "rows"])
    lines = out.getvalue().splitlines()
    assert lines == [
        "Runs",
        "run_id                                status   rows",
        f"{RUN_ID}  success  12",
        "short                                 failed",
    ]


def test_long_cells_are_cut_and_newlines_do_not_break_rows(out: io.StringIO) -> None:
    render.table("Failures", [{"error_message": "boom\n" + "x" * 500}], ["error_message"])
    row = out.getvalue().splitlines()[2]
    assert row.startswith("boom x") and row.endswith("…") and len(row) == render.MAX_CELL


def test_no_rows_says_so_on_one_line(out: io.StringIO) -> None:
    render.table("Failed checks", [], ["check_name"])
    assert out.getvalue() == "Failed checks: (none)\n"


def test_markup_in_values_is_printed_as_is(out: io.StringIO) -> None:
    render.table("Events", [{"scope_key": "[red]AAPL[/red]"}], ["scope_key"])
    assert "[red]AAPL[/red]" in out.getvalue()
