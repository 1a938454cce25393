"""CLI start-up: `options-helper --help` (target: median under 0.3 s), against a bare interpreter."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _median(cmd: list[str], n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(quick: bool = False) -> dict:
    n = 5 if quick else 15
    exe = shutil.which("options-helper") or str(Path(sys.executable).with_name("options-helper"))
    bare = _median([sys.executable, "-c", "pass"], n)
    help_s = _median([exe, "--help"], n)
    import_typer = _median([sys.executable, "-c", "import typer"], n)
    out = {
        "options_helper_help_median_s": round(help_s, 3),
        "bare_python_median_s": round(bare, 3),
        "python_import_typer_median_s": round(import_typer, 3),
        "target_s": 0.3,
        "meets_target": help_s < 0.3,
        "runs": n,
    }
    for k, v in out.items():
        print(f"{k:32} {v}")
    return out


if __name__ == "__main__":
    run()
