"""Jobs: the daily job (every asset, in the registry's daily order) and one job per stage.

The per-stage jobs carry the registry's job names (``ingest_candles``, ..., ``build_dashboard``),
so ``dagster job backfill -j compute_derived --from ... --to ...`` reads like the CLI.

Writer limits (see docs/dagster.md): every job runs its steps in one process, one after another
(``in_process_executor``), and carries the run tag ``options_helper/writes=duckdb``, which the
``run_queue``/``concurrency.runs.tag_concurrency_limits`` of ``frontends/dagster/dagster.yaml``
limits to one run at a time; queued runs start in submission order, so a job backfill runs its
sessions oldest first. Ad-hoc materializations and asset backfills from the UI are covered by
the ``options_helper_duckdb`` pool on every asset (limit 1).
"""

import dagster as dg

from stages import registry

DAILY_JOB_NAME = "daily"
WRITER_TAG_KEY = "options_helper/writes"
WRITER_TAG_VALUE = "duckdb"
WRITER_TAGS = {WRITER_TAG_KEY: WRITER_TAG_VALUE}

daily_job = dg.define_asset_job(
    name=DAILY_JOB_NAME,
    selection=dg.AssetSelection.assets(*(registry.job(name).asset_key for name in registry.DAILY_ORDER)),
    executor_def=dg.in_process_executor,
    tags=WRITER_TAGS,
    description="The daily pipeline for one session, like `options-helper daily --as-of SESSION`: "
    + ", ".join(registry.DAILY_ORDER) + ".",
)

stage_jobs = [
    dg.define_asset_job(
        name=job.name,
        selection=dg.AssetSelection.assets(job.asset_key),
            executor_def=dg.in_process_executor,
        tags=WRITER_TAGS,
        description=f"{job.description} Like `options-helper {job.cli_command} --as-of SESSION`.",
    )
    for job in registry.JOBS
]

JOBS = [daily_job, *stage_jobs]

__all__ = ["DAILY_JOB_NAME", "JOBS", "WRITER_TAGS", "WRITER_TAG_KEY", "WRITER_TAG_VALUE", "daily_job", "stage_jobs"]
