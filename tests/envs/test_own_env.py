"""A user's own env: `env=gym env.id=<module>:<EnvId>` imports the module (tests/own_env.py) from the command line,
picks agent and net from the env's spaces, and a run folder never chooses a module to import."""

from __future__ import annotations

import sys

import gymnasium as gym
import numpy as np
import pytest
from conftest import run_cli

from rlkit.checkpoint import load_checkpoint
from rlkit.envs.builders import check_stored_env, make_env, natural_parts, upgrade_stored_env
from rlkit.envs.gym import import_env_module
from rlkit.errors import RlkitError

OWN = "tests.own_env"


@pytest.fixture(scope="module")
def corridor_run(tmp_path_factory):
    """Tabular Q-learning, chosen by the env's Discrete spaces, trained through the CLI on the user's corridor."""
    run_dir = tmp_path_factory.mktemp("own") / "run"
    proc = run_cli(
        "rlkit.train", "env=gym", f"env.id={OWN}:OwnCorridor-v0", "env.render_mode=ansi", "total_steps=3000",
        "agent.epsilon_decay_steps=1000", "eval_every_steps=0", "final_eval_episodes=5", "progress=false",
        f"hydra.run.dir={run_dir}",
    )
    assert proc.returncode == 0, proc.stderr
    return run_dir, proc


def test_own_env_trains_end_to_end_with_the_agent_its_spaces_call_for(corridor_run):
    run_dir, proc = corridor_run
    assert proc.stdout.startswith(
        f"rlkit: {OWN}:OwnCorridor-v0 observes Discrete(5) and acts in Discrete(2): agent=q_learning net=mlp"
    )
    assert "final evaluation over 5 greedy episodes: return 1.000 +- 0.000" in proc.stdout  # the optimal walk
    data = load_checkpoint(run_dir)
    assert (data["env"], data["agent"], data["config"]["env"]["id"]) == ("gym", "q_learning", f"{OWN}:OwnCorridor-v0")


def test_play_of_an_own_env_run_imports_only_the_module_the_command_line_names(corridor_run):
    run_dir, _ = corridor_run
    refused = run_cli("rlkit.play", f"run={run_dir}", "episodes=1")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr == (
        f"error: env.id={OWN}:OwnCorridor-v0 in {run_dir / 'checkpoint.pt'}: a run folder never chooses a module to "
        f"import; import it yourself by adding env_module={OWN} to the command\n"
    )
    played = run_cli("rlkit.play", f"run={run_dir}", "episodes=2", f"env_module={OWN}", "delay=0")
    assert played.returncode == 0, played.stderr
    assert "....A" in played.stdout and "mean return over 2 episodes: 1.00" in played.stdout


def test_resume_of_an_own_env_run_takes_env_module(corridor_run, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(corridor_run[0], run_dir)
    refused = run_cli("rlkit.train", f"resume={run_dir}", "total_steps=4000")
    assert refused.returncode == 2 and f"adding env_module={OWN} to the command" in refused.stderr
    resumed = run_cli("rlkit.train", f"resume={run_dir}", "total_steps=4000", f"env_module={OWN}", "progress=false")
    assert resumed.returncode == 0, resumed.stderr
    assert load_checkpoint(run_dir)["step"] == 4000


@pytest.mark.parametrize(
    "env_id,message",
    [
        (f"{OWN}:OwnSlider-v0", "error: the env acts in Box(-1.0, 1.0, (1,), float32), but rlkit's agents (tabular "
         "Q-learning and DQN) need discrete actions (gymnasium.spaces.Discrete)"),
        ("tests.no_such_module:X-v0", "error: cannot import tests.no_such_module to register its envs: No module named "
         "'tests.no_such_module'; run from the folder that holds it"),
        (None, "error: env=gym needs env.id=<a registered id>, or env.id=<module>:<EnvId> to import the module that "
         "registers it"),
    ],
)
def test_own_env_refusals_are_one_line(env_id, message, tmp_path):
    proc = run_cli("rlkit.train", "env=gym", *([f"env.id={env_id}"] if env_id else []),
        f"hydra.run.dir={tmp_path / 'run'}")
    assert (proc.returncode, proc.stderr) == (2, message + "\n")
    assert not (tmp_path / "run").exists()


def test_spaces_choose_agent_and_net():
    box = gym.spaces.Box(0.0, 1.0, (3,), np.float32)
    image = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    actions = gym.spaces.Discrete(3)
    assert natural_parts(gym.spaces.Discrete(5), actions) == {"agent": "q_learning", "net": "mlp"}
    assert natural_parts(gym.spaces.Discrete(5), actions, agent="dqn") == {"agent": "dqn", "net": "mlp"}
    assert natural_parts(box, actions) == {"agent": "dqn", "net": "mlp"}
    assert natural_parts(image, actions) == {"agent": "dqn", "net": "cnn"}
    assert natural_parts(gym.spaces.Box(0.0, 1.0, (4, 84, 84), np.float32), actions)["net"] == "mlp"  # not uint8 pixels
    with pytest.raises(RlkitError, match=r"observes Dict\(.*FlattenObservation"):
        natural_parts(gym.spaces.Dict({"a": box}), actions)


def test_height_width_channel_pictures_reach_the_agent_channels_first():
    import tests.own_env  # noqa: F401  # registers OwnPicture-v0

    env = make_env({"id": "OwnPicture-v0"})
    assert env.observation_space.shape == (3, 36, 36)
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(1)  # to cell 1: columns 8..11 of the red channel
    assert obs.shape == (3, 36, 36) and np.flatnonzero(obs[0, 0]).tolist() == [8, 9, 10, 11] and not obs[1:].any()


def test_a_stored_module_id_is_refused_unless_the_command_line_imported_it():
    """Even a module this process holds already (os, rlkit.nets) is refused: only env_module= (or the training
    command's own env.id) names one."""
    for module in ("os", "rlkit.nets.bodies"):
        with pytest.raises(RlkitError, match=rf"^env.id={module}:Taxi-v4 in ckpt: a run folder never chooses a module"):
            check_stored_env({"builder": "gym", "id": f"{module}:Taxi-v4"}, origin="ckpt")
    import_env_module(OWN)  # what env_module=tests.own_env does
    check_stored_env({"builder": "gym", "id": f"{OWN}:OwnCorridor-v0"}, origin="ckpt")
    with pytest.raises(RlkitError, match=r"^env.id=tests.no_such_module:X-v0 in ckpt: a run folder never chooses"):
        check_stored_env({"builder": "gym", "id": "tests.no_such_module:X-v0"}, origin="ckpt")
    assert "tests.no_such_module" not in sys.modules  # refused before any import


def test_env_nodes_written_before_builders_had_names_are_read_in_todays_shape():
    assert upgrade_stored_env({"name": "pong", "kind": "atari", "game": "Pong"}) == {"name": "pong", "builder": "atari",
        "game": "Pong"}
    assert upgrade_stored_env({"name": "taxi", "id": "Taxi-v3"}) == {"name": "taxi", "id": "Taxi-v4", "builder": "gym"}
    assert upgrade_stored_env({"builder": "gym", "id": "Taxi-v3"}) == {"builder": "gym",
        "id": "Taxi-v3"}  # today's: as it is
    with pytest.raises(RlkitError,
            match=r"^env.builder=os.system in ckpt is not known; choose one of: gym, atari, minatar$"):
        check_stored_env(upgrade_stored_env({"kind": "os.system", "id": "Taxi-v4"}), origin="ckpt")
