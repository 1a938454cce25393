"""OpenLineage export: the ledger's runs as OpenLineage ``RunEvent``s, a second follower of the log.

``options-helper lineage export`` (``frontends/cli/lineage_cmd.py``) reads the ledger events after
its cursor (``ledger.follow``), turns each run's start into a START event and its end into a
COMPLETE, FAIL or ABORT event (``frontends/lineage/events.py``), and sends them with the official
``openlineage-python`` client's transports, HTTP or file (``frontends/lineage/export.py``). Its
cursor lives in a small state file next to its output, never in the ledger. See docs/lineage.md.

The client is the optional extra ``lineage`` (``pip install "options-helper[lineage]"``); it is
imported only when an export runs.
"""

from __future__ import annotations

__all__: list[str] = []
