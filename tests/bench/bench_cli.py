"""CLI start-up and the interactive commands (targets: median under 0.3 s each).

Two parts, each figure the median wall time of ``runs`` runs with the median CPU time (user +
system) of the child:

- **start-up**: ``options-helper --help`` against a bare interpreter and ``python -c "import
  typer"`` (the floor: the root --help imports typer and frontends.cli.app only);
- **interactive**: ``health``, ``runs``, ``gaps``, ``events`` and ``db status`` on a ``make demo``
  database (``data/warehouse/options.duckdb`` of this checkout if it exists, else one built in a
  temporary directory by ``python -m frontends.cli.demo``), each with its ratio to ``--help``
  measured in the same run (what the command costs above the start-up every command pays).

Python compiles every module it imports from source when it finds no bytecode cache: with
``PYTHONDONTWRITEBYTECODE=1`` and an editable install (this repository's own modules) that is
every run. So the figures are taken twice: as this environment runs them, and with a bytecode
cache (``PYTHONPYCACHEPREFIX`` in a temporary directory, warmed by one run), which is what an
installation by pip, or by ``uv sync --compile-bytecode``, has.

``--against DIR`` also times the same commands from another checkout (e.g. ``git archive main |
tar -x -C DIR``) run by this interpreter with ``PYTHONPATH=DIR``, alternating old and new run by
run, and prints new / old.

Run with ``python -m tests.bench.bench_cli [--quick] [--db PATH] [--against DIR]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

TARGET_S = 0.3
ROOT = Path(__file__).resolve().parents[2]
DEMO_DB = ROOT / "data" / "warehouse" / "options.duckdb"  # where `make demo` writes (frontends/cli/demo.py)
INTERACTIVE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("health", ("health",)),
    ("runs", ("runs",)),
    ("gaps", ("gaps",)),
    ("events", ("events",)),
    ("db_status", ("db", "status")),
)


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _once(cmd: Sequence[str], env: Mapping[str, str]) -> tuple[float, float]:
    c0, t0 = _child_cpu(), time.perf_counter()
    done = subprocess.run(list(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(env), cwd=ROOT)
    wall, cpu = time.perf_counter() - t0, _child_cpu() - c0
    if done.returncode not in (0, 11):  # 11: `gaps` found cells to fix (not with --check; kept for safety)
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return wall, cpu


def _medians(cmds: Mapping[str, tuple[Sequence[str], Mapping[str, str]]], n: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds per command; the commands take turns run by run, so a burst of
    load on the shared machine touches all of them alike."""
    samples: dict[str, list[tuple[float, float]]] = {k: [] for k in cmds}
    for _ in range(n):
        for key, (cmd, env) in cmds.items():
            samples[key].append(_once(cmd, env))
    return {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in samples.items()}


def _exe() -> str:
    return shutil.which("options-helper") or str(Path(sys.executable).with_name("options-helper"))


def _startup(exe: str, n: int, env: Mapping[str, str]) -> dict[str, float]:
    cmds = {"bare_python": ([sys.executable, "-c", "pass"], env),
            "python_import_typer": ([sys.executable, "-c", "import typer"], env),
            "options_helper_help": ([exe, "--help"], env)}
    out: dict[str, float] = {}
    for key, (wall, cpu) in _medians(cmds, n).items():
        out[f"{key}_median_s"] = round(wall, 3)
        out[f"{key}_median_cpu_s"] = round(cpu, 3)
    return out


def _interactive(prefix: Sequence[str], db: Path, n: int, env: Mapping[str, str],
                 against: tuple[Sequence[str], Mapping[str, str]] | None = None) -> dict[str, Any]:
    cmds: dict[str, tuple[Sequence[str], Mapping[str, str]]] = {"help": ([*prefix, "--help"], env)}
    for name, args in INTERACTIVE:
        cmds[name] = ([*prefix, "--duckdb-path", str(db), *args], env)
    if against is not None:
        old_prefix, old_env = against
        cmds["old.help"] = ([*old_prefix, "--help"], old_env)
        for name, args in INTERACTIVE:
            cmds[f"old.{name}"] = ([*old_prefix, "--duckdb-path", str(db), *args], old_env)
    for cmd, e in cmds.values():  # warm the page cache (and a bytecode cache, where there is one)
        _once(cmd, e)
    med = _medians(cmds, n)
    help_wall = med["help"][0]
    out: dict[str, Any] = {}
    for name, _ in INTERACTIVE:
        wall, cpu = med[name]
        row: dict[str, Any] = {"median_s": round(wall, 3), "median_cpu_s": round(cpu, 3),
                               "over_help": round(wall / help_wall, 2), "meets_target": wall < TARGET_S}
        if against is not None:
            old_wall, old_cpu = med[f"old.{name}"]
            row |= {"old_median_s": round(old_wall, 3), "old_median_cpu_s": round(old_cpu, 3),
                    "new_over_old": round(wall / old_wall, 2)}
        out[name] = row
    out["help_median_s"] = round(help_wall, 3)
    out["slowest"] = max((name for name, _ in INTERACTIVE), key=lambda k: out[k]["median_s"])
    out["slowest_median_s"] = out[out["slowest"]]["median_s"]
    out["slowest_median_cpu_s"] = out[out["slowest"]]["median_cpu_s"]
    out["meets_target"] = out["slowest_median_s"] < TARGET_S
    return out


def _demo_db(tmp: Path, quick: bool) -> tuple[Path, str]:
    """The `make demo` database: this checkout's if there is one, else a fresh one under ``tmp``."""
    if DEMO_DB.exists():
        return DEMO_DB, f"{DEMO_DB.relative_to(ROOT)} (make demo)"
    db = tmp / "warehouse" / "options.duckdb"
    sessions = "5" if quick else "20"
    print(f"[bench_cli] no {DEMO_DB.relative_to(ROOT)}: building a demo database ({sessions} sessions) in {tmp}",
          flush=True)
    subprocess.run([sys.executable, "-m", "frontends.cli.demo", "--sessions", sessions, "--duckdb-path", str(db),
                    "--data-root", str(tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, cwd=ROOT)
    return db, f"built by frontends.cli.demo --sessions {sessions}"


def _print(out: Mapping[str, Any], prefix: str = "") -> None:
    for k, v in out.items():
        if isinstance(v, Mapping):
            _print(v, f"{prefix}{k}.")
        else:
            print(f"{prefix + k:56} {v}")


def run(quick: bool = False, db: str | None = None, against: str | None = None) -> dict[str, Any]:
    n = 5 if quick else 15
    exe = _exe()
    no_cache = {k: v for k, v in os.environ.items() if k != "PYTHONPYCACHEPREFIX"}
    with tempfile.TemporaryDirectory(prefix="bench_cli_") as tmp_text:
        tmp = Path(tmp_text)
        database, source = (Path(db), "given") if db else _demo_db(tmp / "demo", quick)
        cache = tmp / "pycache"
        cached_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached_env["PYTHONPYCACHEPREFIX"] = str(cache)
        for warm in ([exe, "--help"], [sys.executable, "-c", "import typer"]):
            subprocess.run(warm, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=cached_env)

        as_is = _startup(exe, n, no_cache)
        cached = _startup(exe, n, cached_env)
        old = None
        if against:
            old_env = {**cached_env, "PYTHONPATH": str(Path(against).resolve()),
                       "PYTHONPYCACHEPREFIX": str(tmp / "pycache_old")}
            # -P: the working directory (this checkout) does not go first on sys.path
            old = ([sys.executable, "-P", "-m", "frontends.cli.app"], old_env)
            new_prefix: list[str] = [sys.executable, "-P", "-m", "frontends.cli.app"]
        else:
            new_prefix = [exe]
        interactive = _interactive(new_prefix, database, n, no_cache)
        interactive_cached = _interactive(new_prefix, database, n, cached_env, against=old)

    help_s = as_is["options_helper_help_median_s"]
    out: dict[str, Any] = {
        **as_is,
        "bytecode_cache_here": not os.environ.get("PYTHONDONTWRITEBYTECODE"),
        "with_bytecode_cache": cached,
        "interactive": {"database": source, "events": _count_events(database), **interactive},
        "interactive_with_bytecode_cache": interactive_cached,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "target_s": TARGET_S,
        "meets_target": help_s < TARGET_S,
        "meets_target_with_bytecode_cache": cached["options_helper_help_median_s"] < TARGET_S,
        "runs": n,
    }
    _print(out)
    return out


def _count_events(path: Path) -> int | None:
    import duckdb

    try:
        with duckdb.connect(str(path), read_only=True) as con:
            row = con.execute("SELECT count(*) FROM meta.events").fetchone()
    except duckdb.Error:
        return None
    return int(row[0]) if row else None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 runs per figure instead of 15")
    parser.add_argument("--db", default=None, help="database to query (default: the make demo one, else a new one)")
    parser.add_argument("--against", default=None, metavar="DIR", help="also time this checkout's code, alternating")
    a = parser.parse_args()
    run(quick=a.quick, db=a.db, against=a.against)
