"""`options-helper db ...`: create, migrate, inspect, verify, rebuild and reap the ledger."""

from __future__ import annotations

import typer

from frontends.cli import render
from frontends.cli.context import settings, start_reading
from frontends.cli.options import DbPath, Json

db_app = typer.Typer(no_args_is_help=True)



def _open(ctx: typer.Context, duckdb_path: str | None, *, create: bool = False, read_only: bool = False):  # type: ignore[no-untyped-def]
    from ledger import Ledger

    return Ledger.from_settings(settings(ctx, duckdb_path), create=create, read_only=read_only)


def _status(ctx: typer.Context, duckdb_path: str | None) -> dict:  # type: ignore[type-arg]
    import ledger

    s = settings(ctx, duckdb_path)
    return ledger.status(s.duckdb_path, lock_timeout_seconds=s.lock_timeout_seconds)


@db_app.command("init")
def init(ctx: typer.Context, duckdb_path: DbPath = None, json: Json = False) -> None:
    """Create the database (if missing) and apply every migration.

    Example: options-helper db init --duckdb-path data/warehouse/options.duckdb
    """
    led = _open(ctx, duckdb_path, create=True)
    doc = {"database_path": str(led.path), "schema_version": _status(ctx, duckdb_path)["schema_version"]}
    if json:
        render.print_json(doc)
    else:
        render.out.print(f"{led.path}: schema version {doc['schema_version']}")


@db_app.command("migrate")
def migrate_cmd(ctx: typer.Context, duckdb_path: DbPath = None, json: Json = False) -> None:
    """Apply pending migrations (each in one transaction with its checksum row).

    Example: options-helper db migrate
    """
    before = _status(ctx, duckdb_path)
    _open(ctx, duckdb_path, create=True)  # a read-write open applies what is pending
    version = _status(ctx, duckdb_path)["schema_version"]
    doc = {"database_path": before["database_path"], "applied": before["pending"], "schema_version": version}
    if json:
        render.print_json(doc)
    else:
        render.out.print(f"applied {len(doc['applied'])} migration(s); schema version {version}")


@db_app.command("status")
def status(ctx: typer.Context, duckdb_path: DbPath = None, json: Json = False) -> None:
    """Schema version, pending migrations, event and projection counts.

    Example: options-helper db status --json
    """
    start_reading(json=json, tables=False)
    doc = _status(ctx, duckdb_path)
    if json:
        render.print_json(doc)
        return
    if not doc["exists"]:
        render.err.print(f"no database at {doc['database_path']}; create one with `options-helper db init`")
        return
    render.out.print(f"{doc['database_path']}: schema {doc['schema_version']} (code {doc['code_schema_version']}), "
                     f"{doc['bytes']:,} bytes, pending: {', '.join(doc['pending']) or 'none'}")
    for name, n in doc["counts"].items():
        render.out.print(f"  {name:22} {n:>10,}")


@db_app.command("verify")
def verify(ctx: typer.Context, duckdb_path: DbPath = None, json: Json = False) -> None:
    """Recompute the hash chain and rebuild the projections aside; compare with the stored ones.

    Exits 7 and names the first bad seq if any event was edited, deleted or inserted, or if a
    projection drifted. Example: options-helper db verify
    """
    from ledger.errors import IntegrityError

    led = _open(ctx, duckdb_path, read_only=True)  # verifying never writes
    report = led.verify()
    if json:
        render.print_json(report.to_dict())
    else:
        state = "[green]ok[/green]" if report.ok else "[red]FAILED[/red]"
        render.out.print(f"verify {state}: {report.events_checked:,} events, last seq {report.last_seq}, "
                         f"{len(report.projections_checked)} projections compared")
        for p in report.problems:
            render.err.print(f"  - {p}")
    if not report.ok:
        raise IntegrityError(f"db verify found {len(report.problems)} problem(s) in {led.path}"
                             + (f", the first at seq {report.first_bad_seq}" if report.first_bad_seq else "")
                             + "; see the list above (or --json), and `options-helper db rebuild` for drifted projections")


@db_app.command("rebuild")
def rebuild(ctx: typer.Context, duckdb_path: DbPath = None, json: Json = False) -> None:
    """Drop every projection's rows and fold them again from the log (one transaction).

    Example: options-helper db rebuild
    """
    import time

    led = _open(ctx, duckdb_path)
    t0 = time.perf_counter()
    n = led.rebuild()
    doc = {"events": n, "seconds": round(time.perf_counter() - t0, 3)}
    if json:
        render.print_json(doc)
    else:
        render.out.print(f"rebuilt the projections from {n:,} events in {doc['seconds']} s")


@db_app.command("reap")
def reap(ctx: typer.Context, duckdb_path: DbPath = None, json: Json = False) -> None:
    """Mark runs left open as abandoned: those whose lease expired, and at once those whose process
    is gone from this machine (killed or crashed; runs of other machines wait for their lease).

    Example: options-helper db reap
    """
    led = _open(ctx, duckdb_path)
    stored = led.reap()
    ids = [s.event.run_id for s in stored]
    if json:
        render.print_json({"abandoned": ids})
    else:
        render.out.print(f"abandoned {len(ids)} run(s)" + (": " + ", ".join(ids) if ids else ""))
