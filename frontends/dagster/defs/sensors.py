"""The ``ledger_mirror`` sensor: runs made outside Dagster, reported to Dagster as asset events.

Each evaluation reads the ledger events after its cursor (the last ``seq`` it handled, kept by
Dagster as the sensor's cursor, never in the ledger), at most ``PAGE_EVENTS`` of them, and returns
a ``SensorResult`` whose ``asset_events`` are the materializations and check evaluations of runs
not triggered by Dagster (``frontends/dagster/defs/mirror.py``). A long history is caught up over
several ticks. The ledger is only read (read-only connections, no lock held between ticks).

- Interval: ``OPTIONS_HELPER_DAGSTER_MIRROR_INTERVAL`` seconds (default 30).
- On by default (``DefaultSensorStatus.RUNNING``, with the daemon running). Turn it off in the UI
  (Automation -> ledger_mirror), with ``dagster sensor stop ledger_mirror -m frontends.dagster.defs``,
  or have it start stopped with ``OPTIONS_HELPER_DAGSTER_MIRROR=off``.
- A ledger whose last seq is below the cursor (another or a restored file) is reported as the
  tick's skip reason, and the cursor is left where it was.
"""

import os
from collections.abc import Mapping
from pathlib import Path

import dagster as dg

from frontends.dagster.defs.mirror import PAGE_EVENTS, MirrorTick, mirror_tick
from frontends.dagster.defs.partitions import SESSIONS
from frontends.dagster.defs.resources import LedgerResource
from ledger.errors import ConfigError

SENSOR_NAME = "ledger_mirror"
INTERVAL_ENV = "OPTIONS_HELPER_DAGSTER_MIRROR_INTERVAL"
SWITCH_ENV = "OPTIONS_HELPER_DAGSTER_MIRROR"
DEFAULT_INTERVAL_SECONDS = 30
_OFF = {"0", "off", "false", "no", "stopped"}


def mirror_interval(environ: Mapping[str, str] | None = None) -> int:
    """Seconds between evaluations: ``OPTIONS_HELPER_DAGSTER_MIRROR_INTERVAL`` or 30."""
    env = os.environ if environ is None else environ
    text = (env.get(INTERVAL_ENV) or "").strip()
    if not text:
        return DEFAULT_INTERVAL_SECONDS
    try:
        seconds = int(text)
    except ValueError:
        seconds = 0
    if seconds < 1:
        raise ConfigError(f"{INTERVAL_ENV} must be a whole number of seconds >= 1, got {text!r}")
    return seconds


def mirror_status(environ: Mapping[str, str] | None = None) -> dg.DefaultSensorStatus:
    """Running unless ``OPTIONS_HELPER_DAGSTER_MIRROR`` says off."""
    env = os.environ if environ is None else environ
    off = (env.get(SWITCH_ENV) or "").strip().lower() in _OFF
    return dg.DefaultSensorStatus.STOPPED if off else dg.DefaultSensorStatus.RUNNING


def parse_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        seq = int(cursor)
    except ValueError:
        seq = -1
    if seq < 0:
        raise ConfigError(f"the {SENSOR_NAME} cursor must be a ledger seq (a whole number >= 0), got {cursor!r}; "
                          f"reset it with `dagster sensor cursor {SENSOR_NAME} --delete -m frontends.dagster.defs`")
    return seq


def evaluate(ledger: LedgerResource, cursor: str | None, *, limit: int = PAGE_EVENTS) -> MirrorTick:
    """One tick against the ledger ``ledger`` names, after ``cursor``."""
    from ledger.follow import open_follower

    path = ledger.path()
    seq = parse_cursor(cursor)
    if not Path(path).exists():
        return MirrorTick(asset_events=(), cursor=seq,
                          message=f"no ledger at {path} yet; create one with `options-helper db init` or run the CLI")
    known: dict[str, bool] = {}

    def has_partition(key: str) -> bool:
        if key not in known:
            known[key] = SESSIONS.has_partition_key(key)
        return known[key]

    return mirror_tick(open_follower(path), seq, data_root=ledger.settings().data_root, has_partition=has_partition,
                       limit=limit, where=f"the ledger {path}")


@dg.sensor(
    name=SENSOR_NAME,
    minimum_interval_seconds=mirror_interval(),
    default_status=mirror_status(),
    description=(
        "Mirrors runs made outside Dagster (CLI, cron, Python, options-helper backfill) from the options-helper "
        "ledger: their materializations and checks appear here as external asset events, partition = session. "
        "Runs launched by Dagster are not reported twice. Cursor = the last ledger seq handled."
    ),
)
def ledger_mirror(context: dg.SensorEvaluationContext, ledger: LedgerResource) -> dg.SensorResult:
    tick = evaluate(ledger, context.cursor)
    context.log.info(tick.message)
    # The message is the tick's skip reason too: Dagster shows it in the tick history (a tick
    # without run requests is "skipped" whatever it reported).
    return dg.SensorResult(asset_events=list(tick.asset_events), cursor=str(tick.cursor), skip_reason=tick.message)


SENSORS = [ledger_mirror]

__all__ = ["DEFAULT_INTERVAL_SECONDS", "INTERVAL_ENV", "SENSORS", "SENSOR_NAME", "SWITCH_ENV", "evaluate",
           "ledger_mirror", "mirror_interval", "mirror_status", "parse_cursor"]
