"""``ingest_options_bars``: discover an underlying's contracts, then the session's daily bars of
those near the money.

Contracts listed on the session with an expiry within ``settings.expiry_horizon_days`` are
discovered (``option_contracts``, with their point-in-time open interest and close); bars are
fetched for those whose strike lies within ``settings.moneyness_band`` of the spot (the stored
close of the session, else the provider's). The scope is the underlying; the partition's rows
in ``option_contracts`` and ``options_bars`` are replaced as a whole, so a re-run or a resumed
run (``resume=True`` skips underlyings already materialized) never duplicates a bar.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ledger.errors import MalformedResponseError, StageError
from stages import datastore
from stages.jobs.base import JobContext, PartitionResult
from stages.providers.base import OPTION_BARS_SCHEMA, prefetch

_CONTRACT_COLUMNS = ("contract_symbol", "underlying", "expiry", "option_type", "strike", "multiplier", "status",
                     "open_interest", "open_interest_date", "close_price")
_BAR_COLUMNS = ("contract_symbol", "date", "ts", "open", "high", "low", "close", "volume", "vwap", "trade_count")


def gather(ctx: JobContext) -> dict[str, float]:
    closes = ctx.read(lambda con: datastore.closes(con, ctx.symbols, ctx.as_of))
    prefetch(ctx.provider, "option_contracts", list(ctx.symbols), ctx.as_of)  # shared pages, for a batching provider
    return closes


def _spot(ctx: JobContext, closes: dict[str, float], symbol: str) -> tuple[float, str]:
    if symbol in closes:
        return closes[symbol], "candles_daily"
    bars = ctx.require_provider().stock_bars([symbol], ctx.as_of, ctx.as_of)
    if isinstance(bars, pa.Table) and bars.num_rows and "close" in bars.column_names:
        close = bars["close"][0].as_py()
        if close is not None and close > 0:
            return float(close), "provider"
    raise StageError(f"no close for {symbol} on {ctx.as_of} to centre the moneyness band; "
                     "run `options-helper ingest candles` for the session first")


def _require(table: Any, columns: tuple[str, ...], what: str) -> pa.Table:
    if not isinstance(table, pa.Table):
        raise MalformedResponseError(f"the provider returned {type(table).__name__} for {what}, not a table")
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise MalformedResponseError(f"the provider's {what} lack column(s) {', '.join(missing)}")
    return table


def compute(ctx: JobContext, closes: dict[str, float], symbol: str) -> PartitionResult:
    provider = ctx.require_provider()
    horizon = ctx.as_of + dt.timedelta(days=ctx.settings.expiry_horizon_days)
    what = f"contracts of {symbol} on {ctx.as_of}"
    contracts = _require(provider.option_contracts(symbol, ctx.as_of, expiry_lte=horizon), _CONTRACT_COLUMNS, what)
    if contracts.num_rows == 0:
        raise StageError(f"the provider lists no contracts for {symbol} on {ctx.as_of} expiring by {horizon}")
    live = pc.and_(pc.greater_equal(contracts["expiry"], pa.scalar(ctx.as_of, pa.date32())),
                   pc.less_equal(contracts["expiry"], pa.scalar(horizon, pa.date32())))
    contracts = contracts.filter(live)
    if contracts.num_rows == 0:
        raise StageError(f"no contract of {symbol} listed on {ctx.as_of} expires by {horizon}")

    spot, spot_source = _spot(ctx, closes, symbol)
    band = ctx.settings.moneyness_band
    strikes = contracts["strike"]
    near = pc.and_(pc.greater_equal(strikes, spot * (1 - band)), pc.less_equal(strikes, spot * (1 + band)))
    wanted = contracts.filter(near)["contract_symbol"].to_pylist()
    bars = OPTION_BARS_SCHEMA.empty_table()
    if wanted:
        fetched = _require(provider.option_bars(wanted, ctx.as_of, ctx.as_of), _BAR_COLUMNS,
                           f"option bars of {symbol} on {ctx.as_of}")
        if fetched.num_rows:
            stray = pc.invert(pc.is_in(fetched["contract_symbol"], value_set=pa.array(wanted)))
            if pc.any(stray).as_py():
                raise MalformedResponseError(f"the provider returned bars for contracts of {symbol} that were not asked for")
            off = pc.not_equal(fetched["date"], pa.scalar(ctx.as_of, pa.date32()))
            if pc.any(off).as_py():
                raise MalformedResponseError(f"the provider returned bars of {symbol} dated outside {ctx.as_of}")
            bars = fetched.select(list(_BAR_COLUMNS)).sort_by([("contract_symbol", "ascending")])
    bars = bars.append_column("underlying", pa.array([symbol] * bars.num_rows, pa.string()))

    contract_rows = contracts.select(list(_CONTRACT_COLUMNS))
    contract_rows = contract_rows.append_column(
        "as_of", pa.array([ctx.as_of] * contract_rows.num_rows, pa.date32())
    ).sort_by([("contract_symbol", "ascending")])
    partition = {"underlying": symbol}
    return PartitionResult(
        scope_key=symbol,
        writes=(
            datastore.TableWrite(table=datastore.OPTION_CONTRACTS.name, rows=contract_rows,
                                 partition={**partition, "as_of": ctx.as_of}),
            datastore.TableWrite(table=datastore.OPTIONS_BARS.name, rows=bars, partition={**partition, "date": ctx.as_of}),
        ),
        check_input=bars,
        rows=bars.num_rows,
        min_data_time=ctx.as_of,
        max_data_time=ctx.as_of,
        extra={"contracts_discovered": contracts.num_rows, "contracts_in_band": len(wanted),
               "contracts_with_bars": bars.num_rows, "spot": spot, "spot_source": spot_source,
               "expiry_horizon_days": ctx.settings.expiry_horizon_days, "moneyness_band": band},
    )


__all__ = ["compute", "gather"]
