"""Holds a ledger file open read-write (DuckDB's process lock) for a while, as a long commit would.

    python tests/ledger/_child_lock_holder.py LEDGER.duckdb SECONDS

Prints ``holding`` once the file is open.
"""

from __future__ import annotations

import sys
import time

import duckdb


def main() -> int:
    con = duckdb.connect(sys.argv[1])
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
    con.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
