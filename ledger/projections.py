"""The projections of the event log: every rule written once, here, and every statement generated
from it.

A projection is a table keyed on a few columns, folded from one family of events (runs, assets,
checks). Each of its columns says what one event contributes (``expr``, SQL over the event's
envelope columns and its parsed payload, ``{field}`` or ``{field TYPE}``) and how contributions
combine (its rule):

- ``Key``: part of the table's key.
- ``Max`` / ``Min``: the greatest / least value (a status rank, a lease, a seq).
- ``From(group)``: taken together with the other columns of its ``Group`` from one winning
  event: the greatest by the group's ``order`` (table columns; the earliest event on a tie), or
  the least for an ``earliest`` group, among the events of the group's ``events`` types.
- ``ByType``: a contribution that depends on the event's type (a batch's statement reads only the
  cases of its types, a constant when they agree).
- ``Derived``: computed from the row's other columns (``{column}``), or a constant.
- ``Value``: for a table with one row per event (``per_event``), the event's value as it is.

Every rule is a join in a semilattice: combining the rows of two slices of the log gives the row of
both. So the one definition serves the whole log and a batch alike:

- ``fold`` (``db rebuild``, time travel, ``db verify``): each table is one ``INSERT ... SELECT``
  that groups the events by key.
- ``fold_batch`` (every append): the same ``SELECT`` over the batch's events (already in
  ``meta.events``, in the append's transaction, ``seq > head``) is the source of one ``MERGE INTO``
  per table, whose ``UPDATE SET`` is each rule's combination of the stored row with the batch's
  (``greatest``, ``coalesce``, a group's ``CASE WHEN`` on its order). A table with one row per
  event gets a plain ``INSERT``. DuckDB spends most of such a small statement planning it, so each
  batch's statement is generated for the event types it holds: a group none of them competes in
  is left out (its columns keep their stored values), one they all compete in needs no test.

Adding a projection column is one migration (``ALTER TABLE ... ADD COLUMN``) and one line in its
projection below; see docs/ledger.md for a worked example.

A rebuild writes about a million rows. What it costs is parsing payloads, building primary-key
indexes and compressing the rows, so: a family's payloads are parsed once, with a shape of only the
fields its projections read (into a temporary table when several projections read the family); a
table keyed on several columns gets its key after its rows (DuckDB then builds the index once, at
commit); and rows are inserted in no particular order.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Sequence
from contextlib import suppress
from typing import Any

import attrs
import duckdb

from ledger.events import CHECK_RESULT_FIELDS, RUN_EVENT_STATUS, STATUS_RANK, StoredRow


# -- the rules ------------------------------------------------------------------------------------
@attrs.frozen
class ByType:
    """What an event contributes by its type: ``cases`` (event type, SQL), ``default`` otherwise."""

    cases: tuple[tuple[str, str], ...]
    default: str = "NULL"


def by_type(cases: dict[str, str], default: str = "NULL") -> ByType:
    return ByType(tuple(cases.items()), default)


Expr = str | ByType


@attrs.frozen
class Key:
    expr: str


@attrs.frozen
class Max:
    expr: Expr


@attrs.frozen
class Min:
    expr: Expr


@attrs.frozen
class From:
    expr: Expr
    group: str


@attrs.frozen
class Derived:
    template: str


@attrs.frozen
class Value:
    expr: str


Rule = Key | Max | Min | From | Derived | Value


@attrs.frozen
class Group:
    """Columns taken together from one winning event: the greatest by ``order`` (table columns, the
    earliest event on a tie), or the least if ``earliest``, among the events of the types ``events``
    (all of the family's if None). No ``order``: the latest event (a batch's events all come after
    the stored ones, so the batch's wins whenever it has one)."""

    name: str
    order: tuple[str, ...] = ()
    events: tuple[str, ...] | None = None
    earliest: bool = False


@attrs.frozen
class Projection:
    table: str
    family: str
    columns: tuple[tuple[str, Rule], ...]
    groups: tuple[Group, ...] = ()
    where: str | None = None  # which events of the family contribute
    per_event: bool = False  # one row per event: no grouping, no merging

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(name for name, rule in self.columns if isinstance(rule, Key))


# Event families: a projection reads one, parsed once per statement (or once per rebuild).
FAMILIES: dict[str, tuple[str, ...]] = {
    "runs": ("run_started", "run_heartbeat", "run_succeeded", "run_failed", "run_abandoned"),
    "assets": ("asset_materialized", "asset_failed", "asset_skipped"),
    "checks": ("check_evaluated", "checks_evaluated"),
}


@attrs.frozen
class Items:
    """A list in an event's payload (``field``) whose items are each folded as one event of the
    family would be: the ``fields`` read from the item, the others from the event; the row's id
    ``<event_id>/<item[name]>``."""

    field: str
    name: str
    fields: tuple[str, ...]


# The event types whose payload lists items.
ITEMS: dict[str, Items] = {"checks_evaluated": Items("checks", "check_name", CHECK_RESULT_FIELDS)}
FAMILY_OF = {event_type: family for family, types in FAMILIES.items() for event_type in types}

# The status rank (ledger.events.STATUS_RANK, the one definition) of a run event, and back.
_RANK = by_type({t: str(STATUS_RANK[s]) for t, s in RUN_EVENT_STATUS.items()}, default=str(STATUS_RANK["started"]))
_STATUS = "CASE {{status_rank}} {} END".format(
    " ".join(f"WHEN {rank} THEN '{status}'" for status, rank in STATUS_RANK.items()))
_MATERIALIZED = "event_type = 'asset_materialized'"


def _asset_status(materialized: str) -> ByType:
    return by_type({"asset_materialized": f"'{materialized}'", "asset_failed": "'failed'", "asset_skipped": "'skipped'"})


RUNS = Projection("ingestion_runs", "runs", (
    ("run_id", Key("run_id")),
    ("parent_run_id", From("{parent_run_id}", "start")),
    ("job_name", From("{job_name}", "start")),
    ("triggered_by", From("{triggered_by}", "start")),
    ("status", Derived(_STATUS)),
    ("started_at", From("recorded_at", "start")),
    # the terminal event that wins: the highest rank, then the earliest
    ("ended_at", From("recorded_at", "outcome")),
    ("duration_ms", Derived("(epoch_us({ended_at}) - epoch_us({started_at})) // 1000")),
    ("provider", From("{provider}", "start")),
    ("storage_backend", Derived("'duckdb'")),
    ("args_json", From("{args JSON}", "start")),
    ("git_sha", Derived("NULL")),
    ("app_version", From("{app_version}", "start")),
    ("error_type", From(by_type({"run_failed": "{error_type}", "run_abandoned": "'Abandoned'"}), "outcome")),
    ("error_message", From(by_type({"run_failed": "{error_message}", "run_abandoned": "{reason}"}), "outcome")),
    ("error_stack_hash", From(by_type({"run_failed": "{stack_hash}"}), "outcome")),
    ("status_rank", Max(_RANK)),
    ("last_heartbeat_at", Max("recorded_at")),
    # run_started and run_heartbeat carry a lease (DuckDB's CAST rounds to the nearest microsecond)
    ("lease_expires_at", Max(by_type(dict.fromkeys(
        ("run_started", "run_heartbeat"), "recorded_at + to_microseconds(CAST({lease_seconds DOUBLE} * 1000000 AS BIGINT))")))),
    ("partition_key", From("partition_key", "start")),
    ("scope_keys", From("{scope_keys VARCHAR[]}", "start")),
    ("code_version", From("{code_version}", "start")),
    ("backfill_id", From("{backfill_id}", "start")),
    ("error_fingerprint", From(by_type({"run_failed": "{error_fingerprint}"}), "outcome")),
    ("first_seq", From("seq", "start")),
    ("last_seq", Max("seq")),
), groups=(
    # a run has one start (the store refuses another)
    Group("start", ("first_seq",), events=("run_started",), earliest=True),
    Group("outcome", ("status_rank",), events=tuple(RUN_EVENT_STATUS)),
))

RUN_ASSETS = Projection("ingestion_run_assets", "assets", (
    ("run_id", Key("run_id")),
    ("asset_key", Key("asset_key")),
    ("asset_kind", From("{asset_kind}", "last")),
    ("partition_key", Key("partition_key")),
    ("status", From(_asset_status("success"), "last")),
    ("rows_inserted", From("{rows BIGINT}", "last")),
    ("rows_updated", Derived("NULL")),
    ("rows_deleted", Derived("NULL")),
    ("bytes_written", From("{bytes BIGINT}", "last")),
    ("min_event_ts", From("CAST({min_data_time} AS TIMESTAMPTZ)", "last")),
    ("max_event_ts", From("CAST({max_data_time} AS TIMESTAMPTZ)", "last")),
    ("extra_json", From(by_type({
        "asset_materialized": "{extra JSON}",
        "asset_failed": "json_merge_patch({extra JSON}, json_object('error_type', {error_type}, 'error', {error_message}))",
        "asset_skipped": "json_merge_patch({extra JSON}, json_object('reason', {reason}))"}), "last")),
    ("started_at", Derived("NULL")),
    ("ended_at", From("recorded_at", "last")),
    ("duration_ms", Derived("NULL")),
    ("scope_key", Key("scope_key")),
    ("code_version", From("{code_version}", "last")),
    ("data_version", From("{data_version}", "last")),
    ("path", From("{path}", "last")),
    ("sha256", From("{sha256}", "last")),
    ("seq", From("seq", "last")),
), groups=(Group("last"),))

WATERMARKS = Projection("asset_watermarks", "assets", (
    ("asset_key", Key("asset_key")),
    ("scope_key", Key("scope_key")),
    # the newest data date wins, then the latest event: a watermark never moves back
    ("watermark_ts", From("CAST({max_data_time} AS TIMESTAMPTZ)", "newest")),
    ("updated_at", From("recorded_at", "newest")),
    ("last_run_id", From("run_id", "newest")),
    ("seq", From("seq", "newest")),
), groups=(Group("newest", ("watermark_ts", "seq")),),
    where=f"{_MATERIALIZED} AND {{max_data_time}} IS NOT NULL")

CHECKS = Projection("asset_checks", "checks", (
    ("check_id", Key("event_id")),
    ("asset_key", Value("asset_key")),
    ("partition_key", Value("partition_key")),
    ("check_name", Value("{check_name}")),
    ("severity", Value("{severity}")),
    ("status", Value("{status}")),
    ("checked_at", Value("recorded_at")),
    ("metrics_json", Value("{metrics JSON}")),
    ("message", Value("{message}")),
    ("run_id", Value("run_id")),
    ("scope_key", Value("scope_key")),
    ("materialization_event_id", Value("{materialization_id}")),
    ("materialization_seq", Value("{materialization_seq BIGINT}")),
    ("seq", Value("seq")),
), per_event=True)

PARTITIONS = Projection("partition_status", "assets", (
    ("asset_key", Key("asset_key")),
    ("partition_key", Key("partition_key")),
    ("scope_key", Key("scope_key")),
    # the latest asset event sets the status ...
    ("status", From(_asset_status("materialized"), "latest")),
    ("run_id", From("run_id", "latest")),
    ("last_seq", From("seq", "latest")),
    ("updated_at", From("recorded_at", "latest")),
    # ... the latest materialization, if any, the rest (a later failure keeps it)
    ("materialized_seq", From("seq", "materialized")),
    ("materialized_at", From("recorded_at", "materialized")),
    ("materialized_run_id", From("run_id", "materialized")),
    ("code_version", From("{code_version}", "materialized")),
    ("data_version", From("{data_version}", "materialized")),
    ("rows", From("{rows BIGINT}", "materialized")),
    ("bytes", From("{bytes BIGINT}", "materialized")),
    ("path", From("{path}", "materialized")),
    ("sha256", From("{sha256}", "materialized")),
), groups=(Group("latest"), Group("materialized", events=("asset_materialized",))))

PROJECTIONS = (RUNS, RUN_ASSETS, WATERMARKS, CHECKS, PARTITIONS)
PROJECTION_TABLES = tuple(p.table for p in PROJECTIONS)
# Primary keys, for comparisons and ordered reads.
PROJECTION_KEYS: dict[str, tuple[str, ...]] = {p.table: p.key for p in PROJECTIONS}


# -- generating the statements --------------------------------------------------------------------
_FIELD = re.compile(r"\{(\w+)(?: ([A-Z]+(?:\[\])?))?\}")
_ENVELOPE = "seq, event_id, event_type, recorded_at, run_id, asset_key, partition_key, scope_key"


def _fields(text: str, shape: dict[str, str]) -> str:
    """``text`` with each ``{field TYPE}`` replaced by ``p.field``, the field added to ``shape``."""
    def sub(m: re.Match[str]) -> str:
        name, kind = m.group(1), m.group(2) or "VARCHAR"
        if shape.setdefault(name, kind) != kind:
            raise ValueError(f"payload field {name} read as {shape[name]} and {kind}")
        return f'p."{name}"'
    return _FIELD.sub(sub, text)


def _contribution(expr: Expr, types: Iterable[str]) -> str:
    """``expr`` for events of the types ``types``: a ``ByType``'s cases for those types only, one
    expression when they agree."""
    if isinstance(expr, str):
        return expr
    cases = dict(expr.cases)
    values = {t: cases.get(t, expr.default) for t in sorted(types)}
    if len(set(values.values())) <= 1:
        return next(iter(values.values()), expr.default)
    return "CASE event_type {} END".format(" ".join(f"WHEN '{t}' THEN {v}" for t, v in values.items() if v != "NULL"))


def _contributions(proj: Projection, types: frozenset[str]) -> dict[str, str]:
    """What an event of the types ``types`` contributes to each (not derived) column of ``proj``,
    SQL with its ``{field}``s: to a group's column, what the events competing in it contribute, or
    NULL if none does (of the column's type when a derived column reads it)."""
    groups = {g.name: g for g in proj.groups}
    read = {name for _, rule in proj.columns if isinstance(rule, Derived) for name in re.findall(r"\{(\w+)\}", rule.template)}
    out: dict[str, str] = {}
    for name, rule in proj.columns:
        if isinstance(rule, From):
            events = groups[rule.group].events or FAMILIES[proj.family]
            if inside := types & set(events):
                out[name] = _contribution(rule.expr, inside)
            else:
                out[name] = f"CASE WHEN false THEN {_contribution(rule.expr, events)} END" if name in read else "NULL"
        elif not isinstance(rule, Derived):
            out[name] = _contribution(rule.expr, types)
    return out


def _reads(proj: Projection, types: frozenset[str]) -> dict[str, str]:
    """The payload fields (with their types) ``proj`` reads of events of the types ``types``."""
    shape: dict[str, str] = {}
    for text in [*_contributions(proj, types).values(), proj.where or ""]:
        _fields(text, shape)
    return shape


def _shape(fields: dict[str, str], items: Items | None = None) -> str:
    """The json_transform shape of ``fields``; with ``items``, of an event listing them (its
    ``fields`` inside the list, with its name field)."""
    shape: dict[str, Any] = {name: [kind[:-2]] if kind.endswith("[]") else kind for name, kind in fields.items()}
    if items is not None:
        inside = {name: shape.pop(name) for name in fields if name in items.fields}
        shape[items.field] = [{items.name: "VARCHAR", **inside}]
    return json.dumps(shape, separators=(",", ":"))


@functools.cache
def _family_fields() -> dict[str, dict[str, str]]:
    """Each family's payload fields (with their types) its projections read."""
    shapes: dict[str, dict[str, str]] = {family: {} for family in FAMILIES}
    for proj in PROJECTIONS:
        for name, kind in _reads(proj, frozenset(FAMILIES[proj.family])).items():
            if shapes[proj.family].setdefault(name, kind) != kind:
                raise ValueError(f"payload field {name} read as {shapes[proj.family][name]} and {kind}")
    return shapes


def family_select(family: str, events: str, where: str = "", *, types: frozenset[str] | None = None,
                  reads: dict[str, str] | None = None) -> str:
    """The family's events (of the types ``types`` only) of relation ``events`` with their payload
    parsed once (``p``, the fields ``reads`` only); an event of a type in ``ITEMS`` gives a row per
    item."""
    chosen = sorted(types) if types else FAMILIES[family]
    fields = _family_fields()[family] if reads is None else reads
    selects = []
    if plain := [t for t in chosen if t not in ITEMS]:
        listed = ", ".join(f"'{t}'" for t in plain)
        parsed = f"json_transform(payload, '{_shape(fields)}')" if fields else "NULL"
        selects.append(f"SELECT {_ENVELOPE}, {parsed} AS p FROM {events} WHERE event_type IN ({listed}){where}")
    for event_type in (t for t in chosen if t in ITEMS):
        # the payload parsed once, then a row per item: its fields from the item, the others from the event
        items = ITEMS[event_type]
        envelope = _ENVELOPE.replace("event_id", f"event_id || '/' || i.\"{items.name}\" AS event_id")
        packed = ", ".join(f'"{n}" := {"i" if n in items.fields else "d"}."{n}"' for n in fields)
        selects.append(
            f"SELECT {envelope}, {f'struct_pack({packed})' if fields else 'NULL'} AS p FROM "
            f"(SELECT {_ENVELOPE}, d, unnest(d.\"{items.field}\") AS i FROM "
            f"(SELECT {_ENVELOPE}, json_transform(payload, '{_shape(fields, items)}') AS d FROM {events} "
            f"WHERE event_type = '{event_type}'{where}))")
    return " UNION ALL ".join(selects)


def _derived(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)


def _competes(group: Group, types: frozenset[str]) -> bool | str:
    """Which events of the types ``types`` compete in ``group``: all (True), none (False), or
    those passing the returned SQL test."""
    inside = types if group.events is None else types & set(group.events)
    if inside == types:
        return True
    return bool(inside) and f"event_type IN ({', '.join(repr(t) for t in sorted(inside))})"


def _select(proj: Projection, source: str, types: frozenset[str], *, presence: bool = False,
            single: bool = False) -> str:
    """The projection's rows folded from ``source`` (a family relation of events of the types
    ``types``), columns in table order: one aggregate over the events (each contribution written
    into it), then the groups' columns and the derived ones; a group no event competes in gives
    NULLs. ``presence`` adds ``_n_<group>``, the events of each latest-event group that only some
    events compete in (for a merge: does the batch have a winner). ``single``: no two events of
    ``source`` share a key, so each rule's value is its one event's contribution (no grouping)."""
    shape: dict[str, str] = {}  # already in the family's shape
    expr = {name: _fields(text, shape) for name, text in _contributions(proj, types).items()}
    competes = {g.name: _competes(g, types) for g in proj.groups}
    where = f" WHERE {_fields(proj.where, shape)}" if proj.where else ""
    final: dict[str, str] = {}
    if proj.per_event:
        final = {name: expr[name] for name in expr}
        body = f"({source}){where}"
    elif single:
        for name, rule in proj.columns:
            test = competes[rule.group] if isinstance(rule, From) else True
            if not isinstance(rule, Derived):
                final[name] = f"CASE WHEN {test} THEN {expr[name]} END" if isinstance(test, str) else expr[name]
        for g in proj.groups:
            if presence and not g.order and isinstance(competes[g.name], str):
                final[f"_n_{g.name}"] = f"CAST({competes[g.name]} AS INTEGER)"
        body = f"({source}){where}"
    else:
        aggregates = [f"{expr[k]} AS {k}" for k in proj.key]
        members: dict[str, list[str]] = {g.name: [] for g in proj.groups}
        for name, rule in proj.columns:
            if isinstance(rule, Key):
                final[name] = name
            elif isinstance(rule, Max | Min):
                aggregates.append(f"{type(rule).__name__.lower()}({expr[name]}) AS {name}")
                final[name] = name
            elif isinstance(rule, From):
                members[rule.group].append(name)
                final[name] = f"_g_{rule.group}.{name}" if competes[rule.group] else expr[name]
        for g in proj.groups:
            test = competes[g.name]
            if test is False:
                continue
            packed = ", ".join(f"'{c}': {expr[c]}" for c in members[g.name])
            order = ("{" + ", ".join([*(f"'{c}': {expr[c]}" for c in g.order), f"'_seq': {'' if g.earliest else '-'}seq"])
                     + "}") if g.order else "seq"
            only = f" FILTER (WHERE {test})" if isinstance(test, str) else ""
            pick = "arg_min_null" if g.earliest else "arg_max_null"
            aggregates.append(f"{pick}({{{packed}}}, {order}){only} AS _g_{g.name}")
            if presence and not g.order and only:
                aggregates.append(f"count(*){only} AS _n_{g.name}")
                final[f"_n_{g.name}"] = f"_n_{g.name}"
        body = f"(SELECT {', '.join(aggregates)} FROM ({source}){where} GROUP BY {', '.join(expr[k] for k in proj.key)})"
    for name, rule in proj.columns:
        if isinstance(rule, Derived):
            final[name] = _derived(rule.template, final)
    names = [n for n, _ in proj.columns] + [n for n in final if n.startswith("_n_")]
    return f"SELECT {', '.join(f'{final[n]} AS {n}' for n in names)} FROM {body}"


def _merged(proj: Projection, types: frozenset[str]) -> dict[str, str]:
    """Each column of a stored row ``t`` combined with the batch's row ``s`` (of events of the
    types ``types``); ``t.<column>`` where the batch cannot change it."""
    groups = {g.name: g for g in proj.groups}
    contributes = _contributions(proj, types)
    out: dict[str, str] = {}
    for name, rule in proj.columns:
        competes = _competes(groups[rule.group], types) if isinstance(rule, From) else True
        # what the batch cannot change: a key, a group none of its events competes in, a constant,
        # a greatest / least it contributes nothing to
        if (isinstance(rule, Key) or not competes or (isinstance(rule, Derived) and "{" not in rule.template)
                or (isinstance(rule, Max | Min) and contributes[name] == "NULL")):
            out[name] = f"t.{name}"
        elif isinstance(rule, Max):
            out[name] = f"greatest(t.{name}, s.{name})"
        elif isinstance(rule, Min):
            out[name] = f"least(t.{name}, s.{name})"
        elif isinstance(rule, From) and not groups[rule.group].order:
            assert not groups[rule.group].earliest, "an earliest-event group needs an order to merge on"
            # the latest event: the batch's, if it has one
            out[name] = f"CASE WHEN s._n_{rule.group} > 0 THEN s.{name} ELSE t.{name} END" \
                if isinstance(competes, str) else f"s.{name}"
        elif isinstance(rule, From):
            group = groups[rule.group]
            order, first, than = group.order, group.order[0], "<" if group.earliest else ">"
            beats = (f"s.{first} {than} t.{first}" if len(order) == 1 else
                     f"({', '.join(f's.{c}' for c in order)}) {than} ({', '.join(f't.{c}' for c in order)})")
            out[name] = f"CASE WHEN s.{first} IS NOT NULL AND (t.{first} IS NULL OR {beats}) THEN s.{name} ELSE t.{name} END"
    for name, rule in proj.columns:
        if isinstance(rule, Derived) and name not in out:
            out[name] = _derived(rule.template, out)
    return out


def fold_statement(table: str, events: str) -> str:
    """``INSERT`` of the projection ``table`` folded from the event relation ``events``."""
    proj = _projection(table)
    columns = ", ".join(name for name, _ in proj.columns)
    return f"INSERT INTO {{meta}}.{table} ({columns}) {_select(proj, events, frozenset(FAMILIES[proj.family]))}"


@functools.cache
def batch_statement(table: str, types: frozenset[str], *, fresh: bool = False, stored: bool = False,
                    single: bool = False) -> str:
    """The statement that folds the batch (events with ``seq > $head``, the head before it, of the
    types ``types`` in the table's family) into the stored rows of ``table``; ``fresh``: none of its
    rows can exist yet (an ``INSERT``); ``stored``: all of them exist (a ``MERGE`` with nothing to
    insert); ``single``: no two events of the batch share a key (no grouping)."""
    proj = _projection(table)
    source = family_select(proj.family, "meta.events", " AND seq > $head", types=types, reads=_reads(proj, types))
    columns = [name for name, _ in proj.columns]
    if proj.per_event or fresh:
        return f"INSERT INTO meta.{table} ({', '.join(columns)}) {_select(proj, source, types, single=single)}"
    merged = _merged(proj, types)
    on = " AND ".join(f"t.{k} = s.{k}" for k in proj.key)
    update = ", ".join(f"{c} = {merged[c]}" for c in columns if merged[c] != f"t.{c}")
    return (f"MERGE INTO meta.{table} t USING ({_select(proj, source, types, presence=True, single=single)}) s "
            f"ON {on} WHEN MATCHED THEN UPDATE SET {update} "
            + ("" if stored else
               f"WHEN NOT MATCHED THEN INSERT ({', '.join(columns)}) VALUES ({', '.join(f's.{c}' for c in columns)})"))


def _projection(table: str) -> Projection:
    for proj in PROJECTIONS:
        if proj.table == table:
            return proj
    raise KeyError(table)


# -- running them ---------------------------------------------------------------------------------
def fold_batch(con: duckdb.DuckDBPyConnection, head: int, rows: Sequence[StoredRow], *, new_runs: bool = False,
               old_runs: bool = False) -> None:
    """Fold the batch ``rows`` (inserted in this transaction after seq ``head``) into the stored
    projections: one statement per table the batch touches. ``new_runs``: every run of the batch
    starts in it, so rows keyed on its run ids are inserted, not merged (nothing is stored to merge
    with); ``old_runs``: every run of the batch started before it, so the rows keyed on its run ids
    alone are all stored (merged, none inserted). A table whose key no two events of the batch
    share is folded without grouping (each rule over one event is that event's contribution)."""
    by_family: dict[str, list[StoredRow]] = {}
    for row in rows:
        if row.event_type in FAMILY_OF:
            by_family.setdefault(FAMILY_OF[row.event_type], []).append(row)
    for proj in PROJECTIONS:
        events = by_family.get(proj.family)
        if events:
            fresh = new_runs and "run_id" in proj.key
            stored = old_runs and proj.key == ("run_id",)
            single = not proj.per_event and _distinct_keys(proj, events)
            types = frozenset(row.event_type for row in events)
            con.execute(batch_statement(proj.table, types, fresh=fresh, stored=stored, single=single), {"head": head})


def _distinct_keys(proj: Projection, rows: Sequence[StoredRow]) -> bool:
    """No two of ``rows`` share the projection's key (its keys are envelope columns)."""
    fields = [rule.expr for _, rule in proj.columns if isinstance(rule, Key)]
    keys = {tuple(getattr(row, f) for f in fields) for row in rows}
    return len(keys) == len(rows)


def fold(con: duckdb.DuckDBPyConnection, events: str, meta: str = "meta") -> None:
    """Fold the event relation ``events`` (a table name or parenthesised query) into the empty
    projections of ``meta`` (a rebuild, time travel, verify).

    Run it in a transaction where a failure must leave the tables as they were: tables keyed on
    several columns are re-created without their key until their rows are in.
    """
    keys = {table: key for table in PROJECTION_TABLES if (key := _drop_key(con, meta, table))}
    # Projections have no row order (every read sorts by key): letting each thread append its own
    # rows saves copying them into insertion order. The setting is the session's, not the
    # transaction's: it is put back, except after a failure in a transaction, which refuses SET.
    ordered = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0]  # type: ignore[index]
    con.execute("SET preserve_insertion_order = false")
    readers = {family: sum(p.family == family for p in PROJECTIONS) for family in FAMILIES}
    temps = [family for family, n in readers.items() if n > 1]
    try:
        for family in temps:  # parsed once for the projections that share them
            con.execute(f"CREATE OR REPLACE TEMP TABLE _ledger_{family} AS {family_select(family, events)}")
        for proj in PROJECTIONS:
            source = f"SELECT * FROM _ledger_{proj.family}" if proj.family in temps else \
                family_select(proj.family, events)
            con.execute(fold_statement(proj.table, source).replace("{meta}", meta))
        for family in temps:
            con.execute(f"DROP TABLE _ledger_{family}")
        for table, key in keys.items():
            # In a transaction DuckDB builds the index at commit (and checks the key there).
            con.execute(f"ALTER TABLE {meta}.{table} ADD {key}")
    except BaseException:
        with suppress(duckdb.Error):  # a failed transaction refuses both: its rollback drops the table
            for family in temps:
                con.execute(f"DROP TABLE IF EXISTS _ledger_{family}")
            con.execute(f"SET preserve_insertion_order = {bool(ordered)}")
        raise
    con.execute(f"SET preserve_insertion_order = {bool(ordered)}")


_TABLE_KEY = re.compile(r", (PRIMARY KEY\([^()]*\))\);$")


def _drop_key(con: duckdb.DuckDBPyConnection, meta: str, table: str) -> str | None:
    """Re-create the empty ``table`` without its primary key and return the key's clause, when the
    key is a table constraint (``PRIMARY KEY(a, b)``), so that adding it back gives the same DDL
    text and the same constraints in the same order (tests/ledger/test_rebuild.py holds the
    migrations' tables to that). A key declared on its column (``run_id VARCHAR PRIMARY KEY``)
    stays, since ``ALTER TABLE ... ADD PRIMARY KEY`` would store it as a table constraint; so do
    tables with rows or with other kinds of constraint."""
    where = "database_name = current_database() AND schema_name = ? AND table_name = ?"
    row = con.execute(f"SELECT sql FROM duckdb_tables() WHERE {where}", [meta, table]).fetchone()
    match = _TABLE_KEY.search(row[0]) if row else None
    if match is None:
        return None
    kinds = {k for (k,) in con.execute(f"SELECT constraint_type FROM duckdb_constraints() WHERE {where}",
                                       [meta, table]).fetchall()}
    if kinds - {"NOT NULL", "PRIMARY KEY"} or con.execute(f"SELECT 1 FROM {meta}.{table} LIMIT 1").fetchone():
        return None
    columns = con.execute(
        f"SELECT column_name, data_type, column_default, is_nullable FROM duckdb_columns() WHERE {where} "
        "ORDER BY column_index", [meta, table]).fetchall()
    body = ", ".join(
        '"{}" {}{}{}'.format(name.replace('"', '""'), dtype, "" if default is None else f" DEFAULT {default}",
                             "" if nullable else " NOT NULL")
        for name, dtype, default, nullable in columns
    )
    con.execute(f"DROP TABLE {meta}.{table}")
    con.execute(f"CREATE TABLE {meta}.{table} ({body})")
    return match.group(1)


def clear(con: duckdb.DuckDBPyConnection, meta: str = "meta") -> None:
    """Empty every projection (never the log) before a rebuild.

    Each table is dropped and re-created from its own stored DDL (the same columns, types and
    keys): deleting a million rows one by one through the indexes costs seconds, this costs none.
    """
    for table in PROJECTION_TABLES:
        row = con.execute(
            "SELECT sql FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = ? AND table_name = ?", [meta, table]).fetchone()
        if row is None:  # not in this catalog: fall back to deleting the rows
            con.execute(f"DELETE FROM {meta}.{table}")
            continue
        con.execute(f"DROP TABLE {meta}.{table}")
        con.execute(row[0])


__all__ = [
    "FAMILIES",
    "ITEMS",
    "PROJECTIONS",
    "PROJECTION_KEYS",
    "PROJECTION_TABLES",
    "ByType",
    "Derived",
    "From",
    "Group",
    "Items",
    "Key",
    "Max",
    "Min",
    "Projection",
    "Value",
    "batch_statement",
    "by_type",
    "clear",
    "fold",
    "fold_batch",
    "fold_statement",
]
