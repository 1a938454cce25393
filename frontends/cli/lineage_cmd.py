"""`options-helper lineage export`: the ledger's runs as OpenLineage events (optional extra `lineage`).

Thin over ``frontends.lineage.export.export``; the openlineage client is imported only when the
command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from frontends.cli import render
from frontends.cli.context import settings
from frontends.cli.options import DbPath, Json

lineage_app = typer.Typer(no_args_is_help=True)


@lineage_app.command("export")
def export(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option("--url", help="Send to an OpenLineage HTTP endpoint (e.g. Marquez: http://127.0.0.1:5000; a URL without a path posts to /api/v1/lineage).", show_default=False)] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Append the events to this file, one JSON event per line.", show_default=False)] = None,
    since: Annotated[int | None, typer.Option("--since", help="Export the events after this seq instead of after the saved cursor.", show_default=False)] = None,
    namespace: Annotated[str, typer.Option("--namespace", help="The OpenLineage namespace of the jobs.")] = "options-helper",
    state: Annotated[Path | None, typer.Option("--state", help="The cursor file (default: next to --file as FILE.cursor.json; for --url, beside the database).", show_default=False)] = None,
    duckdb_path: DbPath = None,
    json: Json = False,
) -> None:
    """Send each run's START and COMPLETE/FAIL/ABORT as OpenLineage RunEvents, in seq order, once
    each: jobs are the registry's jobs, datasets its assets, checks a data-quality-assertions facet.
    The cursor (last seq sent) is kept in a state file next to the output. Needs the extra
    `lineage` (pip install "options-helper[lineage]").

    Example: options-helper lineage export --file lineage.jsonl    |    options-helper lineage export --url http://127.0.0.1:5000 --json
    """
    from frontends.lineage.export import export as run_export

    s = settings(ctx, duckdb_path)
    with render.progress(enabled=None if not json else False) as bar:
        task = bar.add_task("lineage export", total=None)
        result = run_export(database=s.duckdb_path, data_root=s.data_root, url=url, file=file, namespace=namespace,
                            since=since, state_file=state,
                            progress=lambda n, seq: bar.update(task, description=f"seq {seq:,}", completed=n))
    doc = result.to_dict()
    if json:
        render.print_json(doc)
        return
    if not doc["events_read"]:
        render.out.print(f"no new ledger events after seq {doc['cursor']:,}; nothing sent (cursor in {doc['state_file']})")
        return
    sent = ", ".join(f"{k} {v:,}" for k, v in sorted(doc["emitted"].items())) or "no run starts or ends"
    render.out.print(f"ledger seq {doc['since'] + 1:,}..{doc['cursor']:,} ({doc['events_read']:,} events): sent {sent} "
                     f"to {doc['target']}; cursor saved in {doc['state_file']}")


__all__ = ["lineage_app"]
