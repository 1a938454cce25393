"""The portfolio file's types: the older tool's ``portfolio.json``, read unchanged.

    {"base_currency": "USD", "cash": 10000.0, "risk_profile": {...},
     "positions": [
       {"id": "a", "symbol": "AAPL", "option_type": "call", "expiry": "2027-01-15",
        "strike": 200.0, "contracts": 1, "cost_basis": 12.5, "opened_at": "2026-11-02"},
       {"id": "b", "symbol": "SPY", "net_debit": -150.0,
        "legs": [{"side": "short", "option_type": "put", "expiry": "2027-01-15", "strike": 600.0, "contracts": 1},
                 {"side": "long", "option_type": "put", "expiry": "2027-01-15", "strike": 595.0, "contracts": 1}]}]}

A single-leg position is long unless it says ``"side": "short"`` (the one extension); its
``cost_basis`` is per share, so the premium paid is ``cost_basis * 100 * contracts``. A
multi-leg position's ``net_debit`` is in dollars for the whole position: positive when paid,
negative for a credit received. ``Portfolio.from_dict`` / ``Portfolio.from_json`` are the named
constructors; every problem is an ``InvalidPortfolioError`` naming the position and the field.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from typing import Any

import attrs

from ledger.errors import InvalidPortfolioError

LONG, SHORT = "long", "short"
SIDES = (LONG, SHORT)
OPTION_TYPES = ("call", "put")
MULTIPLIER = 100

_TOP_FIELDS = ("base_currency", "cash", "risk_profile", "positions")
_SINGLE_FIELDS = ("id", "symbol", "option_type", "expiry", "strike", "contracts", "cost_basis", "opened_at", "side")
_MULTI_FIELDS = ("id", "symbol", "legs", "net_debit", "opened_at")
_LEG_FIELDS = ("side", "option_type", "expiry", "strike", "contracts", "ratio")
# The older tool's RiskProfile: field -> kind ("tolerance", "fraction" (number or null), "number", "int").
RISK_PROFILE_FIELDS: Mapping[str, str] = {
    "tolerance": "tolerance",
    "max_portfolio_risk_pct": "optional_number",
    "max_single_position_risk_pct": "optional_number",
    "take_profit_pct": "optional_number",
    "stop_loss_pct": "optional_number",
    "roll_dte_threshold": "int",
    "preferred_roll_dte": "int",
    "earnings_avoid_days": "int",
    "earnings_warn_days": "int",
    "support_proximity_pct": "number",
    "breakout_lookback_weeks": "int",
    "breakout_volume_mult": "number",
    "min_open_interest": "int",
    "min_volume": "int",
}
TOLERANCES = ("low", "medium", "high")
# YYYY-MM-DD, or that date at midnight (``2026-12-18T00:00:00``, which the older tool's pydantic accepted).
_DATE = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})(?:T00:00(?::00(?:\.0+)?)?Z?)?\s*$")


@attrs.frozen(kw_only=True)
class Leg:
    """One option contract line of a position; ``contracts`` is always positive, ``side`` signs it."""

    side: str
    option_type: str
    expiry: dt.date
    strike: float
    contracts: int
    ratio: float | None = None

    @property
    def signed_contracts(self) -> int:
        return self.contracts if self.side == LONG else -self.contracts

    def describe(self) -> str:
        return f"{self.side} {self.contracts} {self.option_type} {self.strike:g} {self.expiry.isoformat()}"


@attrs.frozen(kw_only=True)
class SingleLegPosition:
    """A single option line: ``cost_basis`` per share (premium paid, or received when short)."""

    id: str
    symbol: str
    option_type: str
    expiry: dt.date
    strike: float
    contracts: int
    cost_basis: float
    opened_at: dt.date | None = None
    side: str = LONG

    kind = "single"

    @property
    def legs(self) -> tuple[Leg, ...]:
        return (Leg(side=self.side, option_type=self.option_type, expiry=self.expiry, strike=self.strike,
                    contracts=self.contracts),)

    @property
    def cost(self) -> float:
        """What opening it cost in dollars: positive paid (long), negative received (short)."""
        sign = 1 if self.side == LONG else -1
        return sign * self.cost_basis * MULTIPLIER * self.contracts

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "symbol": self.symbol, "option_type": self.option_type,
                               "expiry": self.expiry.isoformat(), "strike": self.strike, "contracts": self.contracts,
                               "cost_basis": self.cost_basis,
                               "opened_at": self.opened_at.isoformat() if self.opened_at else None}
        if self.side != LONG:
            out["side"] = self.side
        return out


@attrs.frozen(kw_only=True)
class MultiLegPosition:
    """A spread of two or more legs on one underlying; ``net_debit`` in dollars (credit < 0)."""

    id: str
    symbol: str
    legs: tuple[Leg, ...]
    net_debit: float | None = None
    opened_at: dt.date | None = None

    kind = "multi"

    @property
    def cost(self) -> float | None:
        return self.net_debit

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "symbol": self.symbol,
                "legs": [{"side": g.side, "option_type": g.option_type, "expiry": g.expiry.isoformat(),
                          "strike": g.strike, "contracts": g.contracts, "ratio": g.ratio} for g in self.legs],
                "net_debit": self.net_debit, "opened_at": self.opened_at.isoformat() if self.opened_at else None}


Position = SingleLegPosition | MultiLegPosition


@attrs.frozen(kw_only=True)
class Portfolio:
    """The whole file. ``risk_profile`` is kept as given (the older tool's fields, validated)."""

    base_currency: str = "USD"
    cash: float = 0.0
    risk_profile: Mapping[str, Any] = attrs.field(factory=dict)
    positions: tuple[Position, ...] = ()

    @property
    def symbols(self) -> tuple[str, ...]:
        """The underlyings, in first-seen order."""
        return tuple(dict.fromkeys(p.symbol for p in self.positions))

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "portfolio.json") -> Portfolio:
        """Parse the file's text; ``source`` names the file in error messages."""
        try:
            data = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InvalidPortfolioError(f"{source} is not valid JSON ({e}); fix the file, then run "
                                        f"`options-helper portfolio validate {source}`", path=source) from e
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "portfolio.json") -> Portfolio:
        """Validate the parsed JSON document (see the module docstring for the format)."""
        r = _Reader(source)
        if not isinstance(data, Mapping):
            raise r.error(None, None, f"the top level must be a JSON object, got {_kind(data)}")
        r.unknown(data, _TOP_FIELDS, None)
        currency = data.get("base_currency", "USD")
        if not isinstance(currency, str) or not currency.strip():
            raise r.error(None, "base_currency", f"must be a currency code such as \"USD\", got {currency!r}")
        cash = r.number(data.get("cash", 0.0), None, "cash")
        profile = r.risk_profile(data.get("risk_profile", {}))
        raw_positions = data.get("positions", [])
        if not isinstance(raw_positions, list):
            raise r.error(None, "positions", f"must be a list of positions, got {_kind(raw_positions)}")
        positions: list[Position] = []
        seen: dict[str, int] = {}
        for index, raw in enumerate(raw_positions):
            position = r.position(raw, index)
            if position.id in seen:
                raise r.error(f"{position.id!r} (#{index + 1})", "id",
                              f"duplicates position #{seen[position.id] + 1}'s id; ids must be unique")
            seen[position.id] = index
            positions.append(position)
        return cls(base_currency=currency.strip().upper(), cash=cash, risk_profile=profile, positions=tuple(positions))

    def to_dict(self) -> dict[str, Any]:
        return {"base_currency": self.base_currency, "cash": self.cash, "risk_profile": dict(self.risk_profile),
                "positions": [p.to_dict() for p in self.positions]}


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), type(value).__name__)


class _Reader:
    """Field readers that raise ``InvalidPortfolioError`` naming the file, position and field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, position: str | None, field: str | None, problem: str) -> InvalidPortfolioError:
        where = "" if position is None else f"position {position}: "
        what = "" if field is None else f"field {field!r} "
        return InvalidPortfolioError(
            f"{self.source}: {where}{what}{problem}; fix the file, then run "
            f"`options-helper portfolio validate {self.source}`",
            path=self.source, position=position, field=field)

    def unknown(self, data: Mapping[str, Any], known: tuple[str, ...], position: str | None, prefix: str = "") -> None:
        extra = [k for k in data if k not in known]
        if extra:
            raise self.error(position, prefix + str(extra[0]),
                             f"is not a known field (known: {', '.join(known)})")

    def number(self, value: Any, position: str | None, field: str, *, positive: bool = False,
               non_negative: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.error(position, field, f"must be a number, got {value!r}")
        if positive and value <= 0:
            raise self.error(position, field, f"must be greater than 0, got {value!r}")
        if non_negative and value < 0:
            raise self.error(position, field, f"must not be negative, got {value!r}")
        return float(value)

    def count(self, value: Any, position: str, field: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                or float(value) != int(value):
            raise self.error(position, field, f"must be a whole number of contracts, got {value!r}")
        if value <= 0:
            raise self.error(position, field, f"must be greater than 0, got {value!r}")
        return int(value)

    def date(self, value: Any, position: str, field: str, *, optional: bool = False) -> dt.date | None:
        if value is None and optional:
            return None
        match = _DATE.match(value) if isinstance(value, str) else None
        if match:
            try:
                return dt.date.fromisoformat(match.group(1))
            except ValueError:  # 2026-02-30
                pass
        raise self.error(position, field, f"must be a date YYYY-MM-DD, got {value!r}")

    def choice(self, value: Any, choices: tuple[str, ...], position: str | None, field: str) -> str:
        text = value.strip().lower() if isinstance(value, str) else None
        if text not in choices:
            raise self.error(position, field, f"must be one of {', '.join(choices)}, got {value!r}")
        return text

    def symbol(self, value: Any, position: str) -> str:
        from stages.occ import is_ticker

        if not isinstance(value, str) or not value.strip():
            raise self.error(position, "symbol", f"must be a ticker such as \"AAPL\", got {value!r}")
        ticker = value.strip().upper()
        if not is_ticker(ticker):
            raise self.error(position, "symbol", f"is not a valid ticker (1-6 letters or digits starting with a letter, "
                             f"optionally a class suffix such as BRK.B), got {value!r}")
        return ticker

    def risk_profile(self, raw: Any) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            raise self.error(None, "risk_profile", f"must be an object, got {_kind(raw)}")
        self.unknown(raw, tuple(RISK_PROFILE_FIELDS), None, prefix="risk_profile.")
        out: dict[str, Any] = {}
        for key, value in raw.items():
            kind, field = RISK_PROFILE_FIELDS[key], f"risk_profile.{key}"
            if kind == "tolerance":
                out[key] = self.choice(value, TOLERANCES, None, field) if value is not None else None
            elif kind == "optional_number" and value is None:
                out[key] = None
            elif kind == "int":
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise self.error(None, field, f"must be a non-negative whole number, got {value!r}")
                out[key] = value
            else:
                out[key] = self.number(value, None, field, non_negative=True)
        return out

    def position(self, raw: Any, index: int) -> Position:
        label = f"#{index + 1}"
        if not isinstance(raw, Mapping):
            raise self.error(label, None, f"must be an object, got {_kind(raw)}")
        ident = raw.get("id")
        if not isinstance(ident, str) or not ident.strip():
            raise self.error(label, "id", f"must be a non-empty string, got {ident!r}")
        name = f"{ident!r} (#{index + 1})"
        if "legs" in raw:
            return self.multi(raw, ident, name)
        self.unknown(raw, _SINGLE_FIELDS, name)
        for field in ("symbol", "option_type", "expiry", "strike", "contracts", "cost_basis"):
            if field not in raw:
                raise self.error(name, field, "is required for a single-leg position")
        expiry = self.date(raw["expiry"], name, "expiry")
        assert expiry is not None
        return SingleLegPosition(
            id=ident, symbol=self.symbol(raw["symbol"], name),
            option_type=self.choice(raw["option_type"], OPTION_TYPES, name, "option_type"),
            expiry=expiry,
            strike=self.number(raw["strike"], name, "strike", positive=True),
            contracts=self.count(raw["contracts"], name, "contracts"),
            cost_basis=self.number(raw["cost_basis"], name, "cost_basis", non_negative=True),
            opened_at=self.date(raw.get("opened_at"), name, "opened_at", optional=True),
            side=self.choice(raw.get("side", LONG), SIDES, name, "side"),
        )

    def multi(self, raw: Mapping[str, Any], ident: str, name: str) -> MultiLegPosition:
        self.unknown(raw, _MULTI_FIELDS, name)
        if "symbol" not in raw:
            raise self.error(name, "symbol", "is required")
        legs_raw = raw["legs"]
        if not isinstance(legs_raw, list):
            raise self.error(name, "legs", f"must be a list of legs, got {_kind(legs_raw)}")
        if len(legs_raw) < 2:
            raise self.error(name, "legs", f"a multi-leg position needs at least 2 legs, got {len(legs_raw)}")
        legs = []
        for i, leg in enumerate(legs_raw):
            where = f"legs[{i}]"
            if not isinstance(leg, Mapping):
                raise self.error(name, where, f"must be an object, got {_kind(leg)}")
            self.unknown(leg, _LEG_FIELDS, name, prefix=f"{where}.")
            for field in ("side", "option_type", "expiry", "strike", "contracts"):
                if field not in leg:
                    raise self.error(name, f"{where}.{field}", "is required")
            expiry = self.date(leg["expiry"], name, f"{where}.expiry")
            assert expiry is not None
            ratio = leg.get("ratio")
            legs.append(Leg(
                side=self.choice(leg["side"], SIDES, name, f"{where}.side"),
                option_type=self.choice(leg["option_type"], OPTION_TYPES, name, f"{where}.option_type"),
                expiry=expiry,
                strike=self.number(leg["strike"], name, f"{where}.strike", positive=True),
                contracts=self.count(leg["contracts"], name, f"{where}.contracts"),
                ratio=None if ratio is None else self.number(ratio, name, f"{where}.ratio", positive=True),
            ))
        net_debit = raw.get("net_debit")
        return MultiLegPosition(
            id=ident, symbol=self.symbol(raw["symbol"], name), legs=tuple(legs),
            net_debit=None if net_debit is None else self.number(net_debit, name, "net_debit"),
            opened_at=self.date(raw.get("opened_at"), name, "opened_at", optional=True),
        )


__all__ = ["LONG", "MULTIPLIER", "OPTION_TYPES", "RISK_PROFILE_FIELDS", "SHORT", "SIDES", "Leg", "MultiLegPosition",
           "Portfolio", "Position", "SingleLegPosition"]
