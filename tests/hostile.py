"""What every hostile-input test checks, as a user meets it: a real subprocess that ends in one `error:` line and exit
status 2 (or a clean run), inside a CPU-time and memory bound, having written nothing outside its run folder."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from conftest import REPO

CPU_SECONDS = 10.0  # CPU time, not wall time: a busy machine slows a run down, it does not make it use more CPU
MAX_RSS_MB = 500.0
WALL_TIMEOUT = 90.0  # a hang ends here, far above any honest refusal on a loaded machine
MAX_ERROR_CHARS = 300


@dataclass(frozen=True)
class Outcome:
    """One subprocess: its exit status, output, and the CPU seconds and peak memory it (and its children) used."""

    returncode: int
    stdout: str
    stderr: str
    cpu_seconds: float
    rss_mb: float

    def refused(self, *names: str) -> str:
        """Assert a one-line refusal within the bounds, naming each of `names`; return the line."""
        lines = self.stderr.strip().splitlines()
        assert self.returncode == 2, (self.returncode, self.stderr[-2000:])
        assert len(lines) == 1 and lines[0].startswith("error: "), self.stderr[-2000:]
        assert "Traceback" not in self.stderr
        assert len(lines[0]) <= MAX_ERROR_CHARS, len(lines[0])
        for name in names:
            assert name in lines[0], (name, lines[0])
        self.within_bounds()
        return lines[0]

    def within_bounds(self) -> None:
        assert self.cpu_seconds <= CPU_SECONDS, f"{self.cpu_seconds:.1f} CPU s"
        assert self.rss_mb <= MAX_RSS_MB, f"{self.rss_mb:.0f} MB"


def run_hostile(module: str, *args: str, cwd: Path | None = None, timeout: float = WALL_TIMEOUT) -> Outcome:
    """`python -m module args...` with this checkout first on the path; CPU time comes from wait4 (this child and its
    reaped children), peak RSS from the child's VmHWM, read as it runs."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "SDL_VIDEODRIVER": "dummy"}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen([sys.executable, "-m", module, *args], cwd=cwd or REPO, env=env,
            stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        deadline, peak_kb = time.monotonic() + timeout, 0
        while True:
            peak_kb = max(peak_kb, _high_water_kb(child.pid))
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                child.kill()
                os.wait4(child.pid, 0)
                raise AssertionError(f"{module} {' '.join(args)} still running after {timeout:.0f} s (a hang)")
            time.sleep(0.02)
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Outcome(child.returncode, out.read(), err.read(), usage.ru_utime + usage.ru_stime,
            peak_kb / 1024)


def _high_water_kb(pid: int) -> int:
    """The child's own peak RSS so far (VmHWM). wait4's ru_maxrss would start at the forking parent's RSS, which a
    grown pytest worker makes larger than any honest refusal."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def tree_digest(folder: Path) -> str:
    """SHA-256 over every entry below folder (names, kinds, link targets, modes, contents): a sentinel's state."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in sorted([*dirs, *files]):
            path = Path(root, name)
            info = path.lstat()
            digest.update(f"{path.relative_to(folder)}:{info.st_mode}:{info.st_size}".encode())
            if path.is_symlink():
                digest.update(os.readlink(path).encode())
            elif path.is_file():
                digest.update(path.read_bytes())
    return digest.hexdigest()


class Sentinel:
    """A folder beside the run holding a few files that links in the run may point at; it must never change."""

    def __init__(self, where: Path) -> None:
        self.path = where
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "secret.txt").write_text("do not overwrite\n")
        (self.path / "inner").mkdir(exist_ok=True)
        (self.path / "inner" / "data.bin").write_bytes(os.urandom(64))
        self.before = tree_digest(self.path)

    def untouched(self) -> None:
        assert tree_digest(self.path) == self.before, f"something was written under {self.path}"
