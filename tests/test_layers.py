"""Imports only point down (STYLE.md principle 16): agents and nets never reach up to an entry point, the loop,
the composition root or env construction; what they need from an env is passed in (issue 14)."""

import ast
import json
from pathlib import Path

import pytest

from conftest import REPO, run_python

PACKAGE = REPO / "rlkit"
LOW_LAYERS = ("agents", "nets")
# Modules above agents and nets: entry points and their work, the loop, the registry that builds agents, env building.
ABOVE = {
    "rlkit.train", "rlkit.play", "rlkit.supervised", "rlkit.report", "rlkit.cli.app", "rlkit.runs.training", "rlkit.runs.playback",
    "rlkit.runs.resume", "rlkit.config.settings", "rlkit.loop", "rlkit.config.registry", "rlkit.envs.builders", "rlkit.envs.atari",
}


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, relative ones resolved, `from rlkit import x` read as rlkit.x."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found += [(node.lineno, base)] + [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def upward_imports(path: Path, root: Path = REPO) -> list[str]:
    return [
        f"{path.relative_to(root)}:{line} imports {name}"
        for line, name in imported_modules(path, root)
        if any(name == above or name.startswith(above + ".") for above in ABOVE)
    ]


def low_layer_files() -> list[Path]:
    return sorted(p for layer in LOW_LAYERS for p in (PACKAGE / layer).glob("*.py"))


def test_the_walk_sees_every_kind_of_import(tmp_path):
    """The checker itself can fail: each spelling of an upward import is caught, a sibling import is not."""
    agents = tmp_path / "rlkit" / "agents"
    agents.mkdir(parents=True)
    bad = agents / "bad.py"
    bad.write_text(
        "import rlkit.envs.builders\nfrom rlkit.envs import atari\nfrom rlkit.supervised import main\nfrom ..config import registry\n"
        "from ..runs.training import run\nfrom . import base\nfrom rlkit.agents.base import Agent\n"
        "def later():\n    from rlkit.loop import train\n"
    )
    where = "rlkit/agents/bad.py"
    assert upward_imports(bad, tmp_path) == [
        f"{where}:1 imports rlkit.envs.builders", f"{where}:2 imports rlkit.envs.atari", f"{where}:3 imports rlkit.supervised",
        f"{where}:3 imports rlkit.supervised.main", f"{where}:4 imports rlkit.config.registry", f"{where}:5 imports rlkit.runs.training",
        f"{where}:5 imports rlkit.runs.training.run", f"{where}:9 imports rlkit.loop", f"{where}:9 imports rlkit.loop.train",
    ]


def test_agents_and_nets_never_import_upward():
    files = low_layer_files()
    assert {p.name for p in files} >= {"base.py", "tabular.py", "dqn.py", "bodies.py", "heads.py", "transfer.py"}
    problems = [problem for path in files for problem in upward_imports(path)]
    assert problems == [], "imports must point down (STYLE.md 16):\n" + "\n".join(problems)


@pytest.mark.parametrize("module", ["rlkit.agents.tabular", "rlkit.agents.base", "rlkit.nets"])
def test_loading_an_agent_or_the_nets_loads_no_env_code_and_no_tensorboard(module):
    """A fresh interpreter: importing the tabular agent must not pull in Atari (ale_py), env building or TensorBoard."""
    watched = ["ale_py", "rlkit.envs.atari", "rlkit.envs.builders", "rlkit.loop", "rlkit.config.registry", "tensorboard", "hydra"]
    code = f"import json, sys, {module}; print(json.dumps([m for m in {watched!r} if m in sys.modules]))"
    proc = run_python("-c", code)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
