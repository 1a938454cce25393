"""Starting the child scripts and collecting what they acknowledged."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


class Child:
    """A child process whose stdout lines are collected by a thread as they arrive."""

    def __init__(self, script: str, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / script), *args], cwd=ROOT, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.endswith("\n"):  # a line cut by SIGKILL was never acknowledged
                self.lines.append(line.rstrip("\n"))

    def wait_for(self, prefix: str, timeout: float = 60.0, count: int = 1) -> bool:
        """Wait until ``count`` lines starting with ``prefix`` arrived (False on timeout or exit)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(line.startswith(prefix) for line in self.lines) >= count:
                return True
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.005)
        return sum(line.startswith(prefix) for line in self.lines) >= count

    def kill(self) -> None:
        self.proc.kill()
        self.finish(timeout=30)

    def finish(self, timeout: float) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read()

    def values(self, prefix: str) -> list[str]:
        return [line.split(" ", 1)[1] for line in self.lines if line.startswith(prefix + " ")]
