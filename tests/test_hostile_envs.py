"""Env settings checked wherever they come from (issue 20): -1, 0 and huge values of each env kwarg rlkit knows, from
the command line, a checkpoint and a run's recorded overrides; greedy episodes that end; evaluations that stop on a
signal; gymnasium ids whose extra is missing; sizes bounded by the machine."""

from __future__ import annotations

import importlib.util
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, edit_checkpoint, run_main
from hostile import Sentinel, run_hostile

from rlkit import play, tb, train
from rlkit.checkpoint import load_checkpoint
from rlkit.envs.builders import GREEDY_EPISODE_STEPS, greedy_cap_note, make_env, make_train_env
from rlkit.loop import TrainPlan, evaluate
from rlkit.loop import train as train_loop

QUICK = ("total_steps=1000", "eval_every_steps=0", "final_eval_episodes=2", "progress=false")
ENDLESS = ("env=gym", "env.id=tests.endless_env:Endless-v0")
HUGE_MAP = ["S" + "F" * 299] * 2  # 300 cells wide: over the 256x256 cap, yet short enough for Hydra to parse
# Each env kwarg whose meaning rlkit knows, with its -1, 0 and huge value.
KWARG_VALUES: dict[str, tuple[Any, ...]] = {
    "max_episode_steps": (-1, 0, 10**12),
    "render_mode": (-1, 0, "rgb_array" * 500),
    "map_name": (-1, 0, "8x8" * 2000),
    "is_slippery": (-1, 0, 10**12),
    "desc": (-1, 0, HUGE_MAP),
}
KWARG_CASES = [(key, value) for key, values in KWARG_VALUES.items() for value in values]
SOURCES = ("command line", "checkpoint", "recorded overrides")
# One case of each source runs as a real process, as a user meets it (the checkpoint's is the 2 MB map below); the
# others run main() in this process.
AS_A_PROCESS = {("command line", "max_episode_steps", "-1"), ("recorded overrides", "render_mode", "0")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A finished taxi run and a finished run of the endless env, made once."""
    root = tmp_path_factory.mktemp("hostile_envs")
    for name, env in {"taxi": ("env=taxi",), "endless": ENDLESS}.items():
        code = run_main(train.main, *env, *QUICK, f"hydra.run.dir={root / name}", capsys=None)[0]
        assert code == 0
    return {"taxi": root / "taxi", "endless": root / "endless"}


def typed(value: Any) -> str:
    """A value as a command line (and .hydra/overrides.yaml) writes it."""
    return "[" + ",".join(map(typed, value)) + "]" if isinstance(value, list) else str(value)


def copy_run(runs: dict[str, Path], name: str, tmp: Path) -> Path:
    target = tmp / "run"
    shutil.copytree(runs[name], target)
    return target


def edit_config(run_dir: Path, edit: Any) -> None:
    """The checkpoint's config rewritten as an attacker would (conftest.edit_checkpoint)."""
    edit_checkpoint(run_dir, lambda data: edit(data["config"]))


def refused_in_process(main: Any, *args: str, capsys: pytest.CaptureFixture[str]) -> str:
    """main() as `python -m ...` runs it: exit 2 and one `error:` line, which is returned."""
    code, out, err = run_main(main, *args, capsys=capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err[-2000:])
    return lines[0]


def command_for(source: str, key: str, value: Any, runs: dict[str, Path], tmp: Path) -> tuple[str, list[str]]:
    """(entry point, arguments) that meet env.kwargs.<key>=<value> from `source`."""
    if source == "command line":
        return "rlkit.train", ["env=taxi", f"+env.kwargs.{key}={typed(value)}", *QUICK, f"hydra.run.dir={tmp / 'new'}"]
    run_dir = copy_run(runs, "taxi", tmp)
    if source == "checkpoint":
        edit_config(run_dir, lambda config: config["env"]["kwargs"].update({key: value}))
        return "rlkit.play", [f"run={run_dir}", "render=none", "episodes=1"]
    overrides = run_dir / ".hydra" / "overrides.yaml"
    overrides.write_text(overrides.read_text() + f"- +env.kwargs.{key}={typed(value)}\n")
    return "rlkit.train", [f"resume={run_dir}", "total_steps=2000"]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(("key", "value"), KWARG_CASES, ids=[f"{k}={typed(v)[:12]}" for k, v in KWARG_CASES])
def test_each_known_env_kwarg_is_checked_from_every_source(source, key, value, runs, tmp_path, capsys):
    module, args = command_for(source, key, value, runs, tmp_path)
    if (source, key, typed(value)) in AS_A_PROCESS:
        sentinel = Sentinel(tmp_path / "sentinel")
        run_hostile(module, *args, cwd=tmp_path).refused(f"env.kwargs.{key}")
        sentinel.untouched()
    else:
        line = refused_in_process({"rlkit.train": train.main, "rlkit.play": play.main}[module], *args, capsys=capsys)
        assert f"env.kwargs.{key}" in line and len(line) <= 300, line
    assert not (tmp_path / "new").exists()  # refused before any run folder was made
    if source == "recorded overrides":
        assert load_checkpoint(tmp_path / "run")["step"] == 1000  # the run is as it was


def test_a_2_mb_frozenlake_map_in_a_checkpoint_is_refused_within_bounds(runs, tmp_path):
    """The map that cost 97 s and 5 GB inside gymnasium.make: 1500x1500 cells, refused before gymnasium sees it."""
    run_dir = copy_run(runs, "taxi", tmp_path)
    edit_config(run_dir, lambda config: config["env"].update(id="FrozenLake-v1",
        kwargs={"desc": ["S" + "F" * 1498 + "G"] * 1500}))
    sentinel = Sentinel(tmp_path / "sentinel")
    line = run_hostile("rlkit.play", f"run={run_dir}", "render=none", cwd=tmp_path).refused("env.kwargs.desc")
    assert "1500x1500" in line
    sentinel.untouched()


@pytest.mark.parametrize("value", [-1, 0, 10**12])
def test_env_max_episode_steps_is_bounded_too(value, tmp_path, capsys):
    line = refused_in_process(train.main, "env=taxi", f"env.max_episode_steps={value}", *QUICK,
        f"hydra.run.dir={tmp_path / 'new'}", capsys=capsys)
    assert "env.max_episode_steps must be" in line and not (tmp_path / "new").exists()


def test_a_frozenlake_map_within_the_cap_still_trains(tmp_path, capsys):
    code, out, err = run_main(train.main, "env=frozenlake", "+env.kwargs.desc=[SFFH,FFFG]", "total_steps=300",
        "eval_every_steps=0", "final_eval_episodes=1", "progress=false", f"hydra.run.dir={tmp_path / 'run'}",
        capsys=capsys)
    assert code == 0, err
    assert load_checkpoint(tmp_path / "run")["config"]["env"]["kwargs"]["desc"] == ["SFFH", "FFFG"]


def test_greedy_episodes_on_an_env_without_time_limit_end_at_the_cap(runs, tmp_path, capsys):
    """Train printed the cap on its first line (the module fixture's run), its final evaluation ended, and play's
    episodes end at the same cap."""
    code, out, err = run_main(train.main, *ENDLESS, *QUICK, f"hydra.run.dir={tmp_path / 'run'}", capsys=capsys)
    assert code == 0, err
    first = next(line for line in out.splitlines() if line.startswith("rlkit: env="))
    assert first.endswith(f"(no time limit: greedy episodes capped at {GREEDY_EPISODE_STEPS} steps)"), first
    assert "final evaluation over 2 greedy episodes: return 0.000" in out  # the greedy policy stays: capped, not ended
    code, out, err = run_main(play.main, f"run={runs['endless']}", "env_module=tests.endless_env", "render=none",
        "episodes=2", capsys=capsys)
    assert code == 0, err
    assert [line for line in out.splitlines() if line.startswith("episode ")] == [
        f"episode {i}: return 0.00 in {GREEDY_EPISODE_STEPS} steps" for i in (1, 2)]


@pytest.mark.parametrize(("env_cfg", "capped"), [
    ({"id": "Taxi-v3"}, False), ({"id": "Taxi-v3", "max_episode_steps": 5}, False),
    ({"id": "Taxi-v3", "kwargs": {"max_episode_steps": 5}}, False), ({"id": "tests.endless_env:Endless-v0"}, True),
    ({"id": "tests.endless_env:Endless-v0", "max_episode_steps": 50}, False),
])
def test_only_an_env_without_a_time_limit_is_capped(env_cfg, capped):
    env = make_env(env_cfg)
    try:
        assert bool(greedy_cap_note(env)) is capped
        env.reset(seed=0)
        steps = 1 + next(i for i in range(10**5) if env.step(0)[3])  # action 0 never terminates either env
        assert steps == (GREEDY_EPISODE_STEPS if capped else env_cfg.get("max_episode_steps")
            or env_cfg.get("kwargs", {}).get("max_episode_steps") or 200)
    finally:
        env.close()


def _wait_for(child: subprocess.Popen, text: str, timeout: float = 60.0) -> str:
    """stderr read as it comes until `text` shows (a tqdm bar writes without newlines)."""
    seen, deadline = b"", time.monotonic() + timeout
    while text.encode() not in seen:
        assert time.monotonic() < deadline and child.poll() is None, seen[-2000:]
        ready, _, _ = select.select([child.stderr], [], [], 0.5)
        if ready:
            seen += os.read(child.stderr.fileno(), 65536)
    return seen.decode(errors="replace")


@pytest.mark.parametrize(
    ("signum", "evaluation", "settings"),
    [
        (signal.SIGTERM, "evaluation at step 500", ("total_steps=2000", "eval_every_steps=500", "eval_episodes=100000",
            "checkpoint.every_steps=500")),
        pytest.param(signal.SIGINT, "evaluation at step 500", ("total_steps=2000", "eval_every_steps=500",
            "eval_episodes=100000", "checkpoint.every_steps=0"), marks=pytest.mark.slow),
        pytest.param(signal.SIGTERM, "final evaluation", ("total_steps=500", "eval_every_steps=0",
            "final_eval_episodes=100000"), marks=pytest.mark.slow),
    ],
    ids=["SIGTERM-periodic", "SIGINT-periodic-no-checkpoints", "SIGTERM-final"],
)
def test_a_signal_during_an_evaluation_saves_and_exits_130(signum, evaluation, settings, tmp_path, capsys):
    """Greedy episodes of 10,000 steps, 100,000 of them: only the signal ends the evaluation. The checkpoint holds the
    step the evaluation started at, and resume= goes on from it."""
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    child = subprocess.Popen([sys.executable, "-m", "rlkit.train", *ENDLESS, *settings, "progress=true",
        f"hydra.run.dir={run_dir}"], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    try:
        _wait_for(child, evaluation)
        child.send_signal(signum)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130, err[-2000:]
    assert f"stopped by {signal.Signals(signum).name} at step 500; checkpoint saved." in err.decode()
    assert load_checkpoint(run_dir)["step"] == 500
    if evaluation == "final evaluation":
        return
    code, out, err = run_main(train.main, f"resume={run_dir}", "env_module=tests.endless_env", "total_steps=1000",
        "eval_every_steps=0", "final_eval_episodes=1", "progress=false", capsys=capsys)
    assert code == 0, err
    assert load_checkpoint(run_dir)["step"] == 1000


# gymnasium ids whose extra is missing: (the module that would provide it, what the line must tell to install)
MISSING = {
    "LunarLander-v3": ("Box2D", 'pip install "gymnasium[box2d]"'),
    "CarRacing-v3": ("Box2D", 'pip install "gymnasium[box2d]"'),
    "phys2d/CartPole-v1": ("jax", 'pip install "gymnasium[jax]"'),
    "tabular/Blackjack-v0": ("jax", 'pip install "gymnasium[jax]"'),
    "GymV26Environment-v0": ("shimmy", 'pip install "shimmy[gym-v26]"'),
    "Ant-v5": ("mujoco", 'pip install "gymnasium[mujoco]"'),
}


@pytest.mark.parametrize("env_id", MISSING)
def test_a_gymnasium_id_whose_dependency_is_missing_names_what_to_install(env_id, tmp_path, capsys):
    module, install = MISSING[env_id]
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed here")
    args = ("env=gym", f"env.id={env_id}", *QUICK, f"hydra.run.dir={tmp_path / 'new'}")
    if env_id == "LunarLander-v3":
        line = run_hostile("rlkit.train", *args, cwd=tmp_path).refused(env_id, install)
    else:
        line = refused_in_process(train.main, *args, capsys=capsys)
    assert env_id in line and install in line, line
    assert not (tmp_path / "new").exists()


HUGE_HIDDEN = "[1048576,1048576,1048576]"  # 2.2 trillion weights: 44 TB to train, on any machine a refusal


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (("video.size=[100000,100000]",), ("video.size",)),
        (("video.size=[8,8]",), ("video.size",)),
        (("video.size=[4096,4096]",), ("video.size", "4K")),
        (("env=cartpole", f"net.hidden={HUGE_HIDDEN}"), ("net.hidden", "GB")),
        (("env=gym", "env.id=tests.own_env:OwnPicture-v0", "net=cnn", "net.channels=[1048576,1048576,1048576]",
            "net.kernel_sizes=[1,1,1]", "net.strides=[1,1,1]"), ("net.hidden", "net.channels", "GB")),
        (("env=cartpole", "agent.max_grad_norm=-1"), ("agent.max_grad_norm", "null")),
        (("env=cartpole", "agent.max_grad_norm=0"), ("agent.max_grad_norm", "null")),
    ],
)
def test_sizes_and_grad_norms_the_machine_cannot_take_are_one_line(args, names, tmp_path, capsys):
    full = (*args, *QUICK, "video.every_steps=500", f"hydra.run.dir={tmp_path / 'new'}")
    line = refused_in_process(train.main, *full, capsys=capsys)  # the network is counted, never built: no memory
    assert all(name in line for name in names), line
    assert not (tmp_path / "new").exists()


def test_a_checkpoint_asking_for_a_huge_network_is_refused(runs, tmp_path, capsys):
    """A taxi checkpoint edited into a DQN run of net.hidden=[2**20]*3: refused before a weight is allocated (on the
    meta device, so in this process)."""
    run_dir = copy_run(runs, "taxi", tmp_path)

    def huge(config: dict) -> None:
        config["agent"] = {"type": "dqn"}
        config["net"] = {"type": "mlp", "hidden": [2**20] * 3, "head": {"type": "linear"}}

    edit_config(run_dir, huge)
    line = refused_in_process(play.main, f"run={run_dir}", "render=none", "episodes=1", capsys=capsys)
    assert "net.hidden" in line, line


class _StopAfter:
    """A stop request (rlkit.runtime.GracefulStop) that a signal would set after `acts` greedy actions."""

    def __init__(self, acts: int, events: list[tuple[str, int]]) -> None:
        self.acts, self.events, self.requested = acts, events, False

    def act(self, obs: Any) -> int:
        self.events.append(("greedy act", 0))
        self.acts -= 1
        self.requested = self.requested or self.acts <= 0
        return 0  # stays: endless episodes

    def q_values(self, obs: Any) -> Any:
        return [0.0, 0.0]


class _StayAgent:
    def __init__(self, policy: _StopAfter) -> None:
        self._policy = policy

    def act(self, obs: Any, *, explore: bool) -> int:
        return 0

    def observe(self, transition: Any) -> dict:
        return {}

    def policy(self) -> _StopAfter:
        return self._policy


class _Saver:
    def __init__(self, events: list[tuple[str, int]]) -> None:
        self.events = events

    def save(self, step: int) -> None:
        self.events.append(("save", step))


@pytest.mark.parametrize("acts", [1, 7, 10_003, 25_000])
def test_a_stop_during_an_evaluation_ends_it_at_the_next_step(acts):
    """evaluate() ends at the next step once a stop is requested, keeping only finished (here: capped) episodes."""
    events: list[tuple[str, int]] = []
    stop = _StopAfter(acts, events)
    env = make_env({"id": "tests.endless_env:Endless-v0"})
    result = evaluate(env, stop, episodes=1000, stop=stop)
    assert result.stopped and len(events) == acts
    assert result.episodes == acts // GREEDY_EPISODE_STEPS and not result.cut_short


@pytest.mark.parametrize(("every", "acts"), [(100, 3), (250, 1), (250, 10_001)])
def test_the_periodic_checkpoint_comes_before_the_evaluation_at_its_step(every, acts):
    """A stop during the evaluation at the first multiple of `every`: the step was saved before it began, the run
    ends there, interrupted, and its final save holds the same step."""
    events: list[tuple[str, int]] = []
    stop = _StopAfter(acts, events)
    env = make_train_env({"id": "tests.endless_env:Endless-v0"})
    plan = TrainPlan(total_steps=10 * every, seed=0, eval_every_steps=every, eval_episodes=1000,
        checkpoint_every_steps=every, progress=False)
    result = train_loop(env=env, agent=_StayAgent(stop), plan=plan, logger=tb.Logger(None),
        eval_env=make_env({"id": "tests.endless_env:Endless-v0"}), saver=_Saver(events), stop=stop)
    assert events[0] == ("save", every) and events[-1] == ("save", every)
    assert events[1:-1] == [("greedy act", 0)] * acts
    assert result.interrupted and result.steps == every and result.evaluations == []
