"""CLI start-up: `options-helper --help` (target: median under 0.3 s), against a bare interpreter
and `python -c "import typer"` (the floor: the root --help imports typer and frontends.cli.app only).

Each figure is the median wall time of ``runs`` runs, with the median CPU time (user + system) of
the child. Python compiles every module it imports from source when it finds no bytecode cache:
with ``PYTHONDONTWRITEBYTECODE=1`` and a virtualenv installed without ``--compile-bytecode`` (uv's
default) that is every run, and compiling typer costs more than running it. So the figures are
taken twice: as this environment runs them, and with a bytecode cache (``PYTHONPYCACHEPREFIX``
in a temporary directory, warmed by one run), which is what an installation by pip, or by
``uv sync --compile-bytecode``, has.

Run with ``python -m tests.bench.bench_cli [--quick]``.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

TARGET_S = 0.3


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _medians(cmd: list[str], n: int, env: Mapping[str, str]) -> tuple[float, float]:
    """Median wall and CPU seconds of ``n`` runs of ``cmd``."""
    walls, cpus = [], []
    for _ in range(n):
        c0, t0 = _child_cpu(), time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=dict(env))
        walls.append(time.perf_counter() - t0)
        cpus.append(_child_cpu() - c0)
    return statistics.median(walls), statistics.median(cpus)


def _figures(exe: str, n: int, env: Mapping[str, str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, cmd in (("bare_python", [sys.executable, "-c", "pass"]),
                     ("python_import_typer", [sys.executable, "-c", "import typer"]),
                     ("options_helper_help", [exe, "--help"])):
        wall, cpu = _medians(cmd, n, env)
        out[f"{key}_median_s"] = round(wall, 3)
        out[f"{key}_median_cpu_s"] = round(cpu, 3)
    return out


def run(quick: bool = False) -> dict[str, Any]:
    n = 5 if quick else 15
    exe = shutil.which("options-helper") or str(Path(sys.executable).with_name("options-helper"))
    as_is = _figures(exe, n, os.environ)
    with tempfile.TemporaryDirectory(prefix="bench_cli_pycache_") as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        for warm in ([exe, "--help"], [sys.executable, "-c", "import typer"]):
            subprocess.run(warm, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
        cached = _figures(exe, n, env)
    help_s = as_is["options_helper_help_median_s"]
    out: dict[str, Any] = {
        **as_is,
        "bytecode_cache_here": not os.environ.get("PYTHONDONTWRITEBYTECODE"),
        "with_bytecode_cache": cached,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "target_s": TARGET_S,
        "meets_target": help_s < TARGET_S,
        "meets_target_with_bytecode_cache": cached["options_helper_help_median_s"] < TARGET_S,
        "runs": n,
    }
    for k, v in out.items():
        if isinstance(v, dict):
            for kk, vv in v.items():
                print(f"{k + '.' + kk:56} {vv}")
        else:
            print(f"{k:56} {v}")
    return out


if __name__ == "__main__":
    run(quick="--quick" in sys.argv[1:])
