"""Benchmark: the S&P-500-sized daily, 500 synthetic symbols, steady state, on every core.

Run with ``python -m tests.bench.bench_scale [--quick]`` (``--quick``: 50 symbols). It is
``bench_pipeline`` at 500 symbols (two sessions into a fresh file and data root; the second is the
steady state: wall, CPU of the runner and its workers, the ledger's share against a data-only
baseline replayed in the same process) plus the steady state re-run in fresh processes, pooled
and serial, for peak memory (the runner's and its largest worker's) and the serial baseline's
wall time in the same run. Targets: under 45 s wall and 1 GiB peak memory (the runner's peak RSS and the runner's and its
workers' PSS summed, sampled, both under it); ledger share under 3 %.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from tests.bench import bench_pipeline

SYMBOLS = 500
TARGET_SECONDS = 45.0
TARGET_RSS_MIB = 1024.0
TARGET_LEDGER_SHARE = 0.03


def run(quick: bool = False) -> dict[str, Any]:
    n = 50 if quick else SYMBOLS
    doc = bench_pipeline.run(symbols=n, probe_memory=True)
    steady = doc["steady_state"]
    pooled = doc["memory_probe"]["workers_0"]  # 0: one worker per CPU
    serial = doc["memory_probe"]["workers_1"]
    rss = pooled["runner_peak_rss_mib"] + pooled["worker_peak_rss_mib"]
    pss = pooled["tree_peak_pss_mib"]
    doc["benchmark"] = "scale_daily"
    doc["summary"] = {
        "symbols": n,
        "seconds": steady["seconds"],
        "cpu_seconds": steady["cpu_seconds"],
        "fresh_process_seconds": pooled["seconds"],
        "serial_fresh_process_seconds": serial["seconds"],
        "speedup_vs_serial": round(serial["seconds"] / pooled["seconds"], 2) if pooled["seconds"] else None,
        "peak_rss_mib_runner": pooled["runner_peak_rss_mib"],
        "peak_rss_mib_largest_worker": pooled["worker_peak_rss_mib"],
        "peak_rss_mib_upper_bound": round(rss, 1),
        "peak_pss_mib_runner_and_workers": pooled["tree_peak_pss_mib"],
        "serial_peak_rss_mib": serial["runner_peak_rss_mib"],
        "ledger_share": steady["ledger_share"],
        "ledger_recording_seconds": steady["ledger_recording_seconds"],
    }
    doc["targets"] = {"seconds": TARGET_SECONDS, "memory_mib": TARGET_RSS_MIB, "ledger_share": TARGET_LEDGER_SHARE}
    doc["meets_targets"] = {"seconds": steady["seconds"] < TARGET_SECONDS, "memory_mib": max(pss, pooled["runner_peak_rss_mib"]) < TARGET_RSS_MIB,
                            "ledger_share": steady["ledger_share"] < TARGET_LEDGER_SHARE}
    s = doc["summary"]
    print(f"\nscale: {n} symbols, steady state {s['seconds']:.1f} s wall ({s['cpu_seconds']:.1f} s CPU); "
          f"fresh process {s['fresh_process_seconds']:.1f} s vs serial {s['serial_fresh_process_seconds']:.1f} s "
          f"(x{s['speedup_vs_serial']}); peak RSS runner {s['peak_rss_mib_runner']:.0f} MiB + largest worker "
          f"{s['peak_rss_mib_largest_worker']:.0f} MiB, together (PSS) {s['peak_pss_mib_runner_and_workers']:.0f} MiB "
          f"(serial {s['serial_peak_rss_mib']:.0f} MiB); "
          f"ledger share {s['ledger_share']:.1%}; meets targets: {doc['meets_targets']}")
    return doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.bench.bench_scale", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="50 symbols instead of 500")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args(argv)
    doc = run(quick=args.quick)
    if args.json:
        print(json.dumps(doc, indent=2, default=str))
    else:
        bench_pipeline._print(doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
