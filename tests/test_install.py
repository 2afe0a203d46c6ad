"""conf/ must be found from a source checkout (the other tests) and from a non-editable install (here)."""

import os
import shutil
import subprocess
import sys

import pytest
from conftest import REPO


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    if shutil.which("git") is None:
        pytest.skip("needs git to copy the tracked sources")
    base = tmp_path_factory.mktemp("wheel")
    src, target = base / "src", base / "site"
    # Copy the checkout (tracked + untracked, not ignored) so build artefacts never land in the repo.
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO, capture_output=True, text=True,
            check=True
    ).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-compile", "-q", "--target",
            str(target), str(src)],
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        pytest.fail(proc.stderr)
    return target


def run_installed(target, cwd, *args):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_conf_ships_inside_the_wheel(installed, tmp_path):
    proc = run_installed(installed, tmp_path, "-c", "import rlkit.cli.app as c; print(c.conf_dir())")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(installed / "rlkit" / "conf")
    assert (installed / "rlkit" / "conf" / "env" / "taxi.yaml").is_file()


def test_installed_train_runs_outside_the_checkout(installed, tmp_path):
    proc = run_installed(
        installed, tmp_path, "-m", "rlkit.train", "env=taxi", "total_steps=500", "eval_every_steps=0",
        "final_eval_episodes=2", "progress=false", "hydra.run.dir=run",
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
