"""Imports only point down (STYLE.md principle 16): one table of layers, and every module of rlkit obeys it."""

import ast
import json
from pathlib import Path

import pytest
from conftest import REPO, run_python

PACKAGE = REPO / "rlkit"
# Bottom to top. A module may import its own package (or, at the top level, its own module) and anything in a
# lower row; never a row above it, nor another package of its own row.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("rlkit.errors",),
    ("rlkit.plain", "rlkit.lazy", "rlkit.run_files"),
    ("rlkit.tb", "rlkit.runtime", "rlkit.run_folder"),
    ("rlkit.checkpoint",),
    ("rlkit.nets", "rlkit.replay"),
    ("rlkit.agents",),
    ("rlkit.envs",),
    ("rlkit.loop",),
    ("rlkit.cli",),
    ("rlkit.config",),
    ("rlkit.watch", "rlkit.analysis"),
    ("rlkit.digits",),
    ("rlkit.runs",),
    ("rlkit.train", "rlkit.play", "rlkit.supervised", "rlkit.report", "rlkit.callbacks"),
)


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, lazy ones too, relative ones resolved, `from rlkit import x` as
    rlkit.x."""
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
            found += [(node.lineno, f"{base}.{alias.name}") if base == "rlkit" else (node.lineno,
                base) for alias in node.names]
    return sorted(set(found))


def layer_of(module: str) -> tuple[int, str] | None:
    """(row, group) of an rlkit module in LAYERS; None for a module outside rlkit (or rlkit itself)."""
    for row, groups in enumerate(LAYERS):
        for group in groups:
            if module == group or module.startswith(group + "."):
                return row, group
    return None


def bad_imports(path: Path, root: Path = REPO) -> list[str]:
    """Each import of `path` that points up or sideways in LAYERS, as 'file:line imports module'."""
    importer = layer_of(module_name(path, root))
    problems = []
    for line, name in imported_modules(path, root):
        imported = layer_of(name)
        if importer is None or imported is None or imported[1] == importer[1]:
            continue
        if imported[0] >= importer[0]:
            problems.append(f"{path.relative_to(root)}:{line} imports {name}")
    return problems


def test_the_walk_sees_every_kind_of_import(tmp_path):
    """The checker itself can fail: each spelling of an upward or sideways import is caught, a sibling or lower one
    is not."""
    agents = tmp_path / "rlkit" / "agents"
    agents.mkdir(parents=True)
    bad = agents / "bad.py"
    bad.write_text(
        "import rlkit.envs.builders\nfrom rlkit.envs import atari\nfrom rlkit import supervised\nfrom ..config import "
            "registry\n"
        "from ..runs.training import run\nfrom . import base\nfrom rlkit.agents.base import Agent\nfrom rlkit import "
            "tb\n"
        "from ..replay import buffer\nimport numpy\n"
        "def later():\n    from rlkit.loop import train\n"
    )
    where = "rlkit/agents/bad.py"
    assert bad_imports(bad, tmp_path) == [
        f"{where}:1 imports rlkit.envs.builders", f"{where}:2 imports rlkit.envs",
            f"{where}:3 imports rlkit.supervised",
        f"{where}:4 imports rlkit.config", f"{where}:5 imports rlkit.runs.training", f"{where}:12 imports rlkit.loop",
    ]
    sideways = tmp_path / "rlkit" / "nets" / "bad.py"
    sideways.parent.mkdir()
    sideways.write_text("from rlkit.replay.buffer import Batch\n")
    assert bad_imports(sideways, tmp_path) == ["rlkit/nets/bad.py:1 imports rlkit.replay.buffer"]


def test_every_module_has_a_layer():
    modules = [module_name(path, REPO) for path in sorted(PACKAGE.rglob("*.py"))]
    assert len(modules) > 40
    assert [m for m in modules if m != "rlkit" and layer_of(m) is None] == []


def test_every_import_points_down():
    problems = [problem for path in sorted(PACKAGE.rglob("*.py")) for problem in bad_imports(path)]
    assert problems == [], "imports must point down (STYLE.md 16; tests/test_layers.py LAYERS):\n" + "\n".join(problems)


def test_at_most_14_modules_at_the_top():
    top = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert len(top) <= 14, top


@pytest.mark.parametrize("module", ["rlkit.agents.tabular", "rlkit.agents.base", "rlkit.agents.distributions",
    "rlkit.nets"])
def test_loading_an_agent_or_the_nets_loads_no_env_code_and_no_tensorboard(module):
    """A fresh interpreter: importing the tabular agent must not pull in Atari (ale_py), env building or TensorBoard."""
    watched = ["ale_py", "minatar", "rlkit.envs.atari", "rlkit.envs.minatar", "rlkit.envs.builders", "rlkit.loop",
        "rlkit.config.registry", "tensorboard", "hydra"]
    code = f"import json, sys, {module}; print(json.dumps([m for m in {watched!r} if m in sys.modules]))"
    proc = run_python("-c", code)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def test_a_cartpole_run_imports_only_the_parts_its_config_names(tmp_path):
    """A real CartPole DQN run without videos: no Atari, digits, frame replay, prioritized sampler, tabular agent,
    watch, resume or report module is loaded; a prioritized run does load its sampler (the check can fail)."""
    from benchmarks.imports import UNUSED_BY_CARTPOLE, loaded_files

    def modules(*overrides: str) -> set[str]:
        files = loaded_files(["env=cartpole", "video.every_steps=0", *overrides], 300, tmp_path / str(len(overrides)))
        return {module_name(path, REPO) for path in files}

    def unused(loaded: set[str]) -> list[str]:
        return sorted(m for m in loaded if any(m == u or m.startswith(u + ".") for u in UNUSED_BY_CARTPOLE))

    assert unused(modules()) == []
    assert unused(modules("agent/sampler=prioritized", "agent.sampler.alpha=0.5")) == ["rlkit.replay.prioritized"]
