"""`options-helper db ...`: create, migrate, inspect, verify, rebuild and reap the ledger."""

from __future__ import annotations

import typer

from frontends.cli import render
from frontends.cli.context import settings
from frontends.cli.options import DbPath, Json

db_app = typer.Typer(no_args_is_help=True)



def _open(ctx: typer.Context, duckdb_path: str | None, *, create: bool):  # type: ignore[no-untyped-def]
    import ledger

    s = settings(ctx, duckdb_path)
    return ledger.open(s.duckdb_path, create=create, lock_timeout_seconds=s.lock_timeout_seconds,
                       lease_seconds=s.lease_seconds)


@db_app.command("init")
def init(ctx: typer.Context, duckdb_path: DbPath = None, json: Json = False) -> None:
    """Create the database (if missing) and apply every migration.

    Example: options-helper db init --duckdb-path data/warehouse/options.duckdb
    """
    from ledger import migrate
    from ledger.connection import connect

    led = _open(ctx, duckdb_path, create=True)
    with connect(led.path, read_only=True) as con:
        version = migrate.schema_version(con)
    doc = {"database_path": str(led.path), "schema_version": version}
    if json:
        render.print_json(doc)
    else:
        render.out.print(f"{led.path}: schema version {version}")


@db_app.command("migrate")
def migrate_cmd(ctx: typer.Context, duckdb_path: DbPath = None, json: Json = False) -> None:
    """Apply pending migrations (each in one transaction with its checksum row).

    Example: options-helper db migrate
    """
    from ledger import migrate
    from ledger.connection import connect

    s = settings(ctx, duckdb_path)
    s.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    with connect(s.duckdb_path, read_only=False, timeout_seconds=s.lock_timeout_seconds) as con:
        applied = migrate.migrate(con)
        version = migrate.schema_version(con)
    doc = {"database_path": str(s.duckdb_path), "applied": [f"{m.version:04d}_{m.name}" for m in applied],
           "schema_version": version}
    if json:
        render.print_json(doc)
    else:
        render.out.print(f"applied {len(applied)} migration(s); schema version {version}")


@db_app.command("status")
def status(ctx: typer.Context, duckdb_path: DbPath = None, json: Json = False) -> None:
    """Schema version, pending migrations, event and projection counts.

    Example: options-helper db status --json
    """
    from ledger import migrate, queries
    from ledger.connection import connect

    s = settings(ctx, duckdb_path)
    doc: dict = {"database_path": str(s.duckdb_path), "exists": s.duckdb_path.exists(),
                 "code_schema_version": migrate.code_schema_version()}
    if s.duckdb_path.exists():
        with connect(s.duckdb_path, read_only=True, timeout_seconds=s.lock_timeout_seconds) as con:
            pending = migrate.check(con)
            doc |= {"schema_version": migrate.schema_version(con),
                    "pending": [f"{m.version:04d}_{m.name}" for m in pending],
                    "counts": queries.counts(con) if migrate.schema_version(con) else {},
                    "bytes": s.duckdb_path.stat().st_size}
    if json:
        render.print_json(doc)
        return
    if not doc["exists"]:
        render.err.print(f"no database at {s.duckdb_path}; create one with `options-helper db init`")
        return
    render.out.print(f"{s.duckdb_path}: schema {doc['schema_version']} (code {doc['code_schema_version']}), "
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

    led = _open(ctx, duckdb_path, create=False)
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

    led = _open(ctx, duckdb_path, create=False)
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
    led = _open(ctx, duckdb_path, create=False)
    stored = led.reap()
    ids = [s.event.run_id for s in stored]
    if json:
        render.print_json({"abandoned": ids})
    else:
        render.out.print(f"abandoned {len(ids)} run(s)" + (": " + ", ".join(ids) if ids else ""))
