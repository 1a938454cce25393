"""Three hand-built sessions of the made-up root XYZ (spot 100) for the flow tests.

    A = Wed 2025-01-15, B = Fri 2025-01-17 (Thu 01-16 was missed: A -> B spans 2 sessions),
    C = Tue 2025-01-21 (Mon 01-20 is a holiday: B -> C spans 1 session).

Expiries: W0 = 01-15 (expires at A's close), W1 = 01-17 (the weekly, expires at B's close),
M = 02-21. Marks are two-sided mids (bid/ask 0.05 either side). What happens:

==========  =========================  ==============================  ==============================
contract    A                          B                               C
==========  =========================  ==============================  ==============================
W0 C100     OI 300, mark 0.15          gone: **expired**               -
W1 C100     OI 1000, mark 1.00         OI 1200, mark 0.40, vol 900     gone: **expired**
W1 P100     OI 800, mark 0.80          OI 700, mark 0.20, vol 300      gone: **expired**
M  C100     OI 2000, mark 3.00         OI 2050, mark 3.20, vol 1000    OI 1900, mark 2.50, vol 400
M  P95      OI 500, mark 1.50          OI 505, mark 1.40, vol 20       OI 600, mark 1.60, vol 300
M  P90      OI 400, mark 0.50          OI 400, mark 0.40, vol 0        gone before expiry: **disappeared**
M  C110     -                          **new**: OI 150, mark 0.50,     OI 140, mark 0.60, vol 5
                                       vol 150
==========  =========================  ==============================  ==============================
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from tests.stages.conftest import occ, snapshot

A, MISSED, B, C = dt.date(2025, 1, 15), dt.date(2025, 1, 16), dt.date(2025, 1, 17), dt.date(2025, 1, 21)
W0, W1, M = dt.date(2025, 1, 15), dt.date(2025, 1, 17), dt.date(2025, 2, 21)


def _c(expiry: dt.date, kind: str, strike: float, mark: float, volume: float, oi: float) -> dict:
    return dict(expiry=expiry, option_type=kind, strike=float(strike), bid=round(mark - 0.05, 2),
                ask=round(mark + 0.05, 2), last=mark, volume=volume, open_interest=oi, delta=None)


def three_sessions() -> tuple[pa.Table, pa.Table, pa.Table]:
    a = snapshot([
        _c(W0, "call", 100, 0.15, 500, 300),
        _c(W1, "call", 100, 1.00, 200, 1000),
        _c(W1, "put", 100, 0.80, 100, 800),
        _c(M, "call", 100, 3.00, 100, 2000),
        _c(M, "put", 95, 1.50, 20, 500),
        _c(M, "put", 90, 0.50, 10, 400),
    ], spot=100.0, as_of=A)
    b = snapshot([
        _c(W1, "call", 100, 0.40, 900, 1200),
        _c(W1, "put", 100, 0.20, 300, 700),
        _c(M, "call", 100, 3.20, 1000, 2050),
        _c(M, "put", 95, 1.40, 20, 505),
        _c(M, "put", 90, 0.40, 0, 400),
        _c(M, "call", 110, 0.50, 150, 150),
    ], spot=100.0, as_of=B)
    c = snapshot([
        _c(M, "call", 100, 2.50, 400, 1900),
        _c(M, "put", 95, 1.60, 300, 600),
        _c(M, "call", 110, 0.60, 5, 140),
    ], spot=100.0, as_of=C)
    return a, b, c


W0C100, W1C100, W1P100 = occ(W0, "call", 100), occ(W1, "call", 100), occ(W1, "put", 100)
MC100, MP95, MP90, MC110 = occ(M, "call", 100), occ(M, "put", 95), occ(M, "put", 90), occ(M, "call", 110)
