"""The DQN node checked once into DQNSettings: code defaults equal conf/'s, part nodes named from fixed registries,
every refusal one line naming the key and the fix, and a run checks its parts once per process."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from conftest import run_main
from omegaconf import OmegaConf

from rlkit.cli.app import conf_dir
from rlkit.cli.overrides import OPTION_KEYS
from rlkit.config import dqn as dqn_config
from rlkit.config import registry, settings
from rlkit.config.dqn import HEADS, REPLAYS, SAMPLERS, DQNSettings, HeadSettings, PrioritizedSampling, UniformSampling
from rlkit.config.registry import PartsSettings, check_parts
from rlkit.config.settings import VideoSettings, upgrade_stored_config, video_settings
from rlkit.errors import RlkitError
from rlkit.nets import DuelingHead
from rlkit.replay.buffer import ReplayBuffer
from rlkit.replay.frames import FrameReplayBuffer
from rlkit.replay.prioritized import PrioritizedSampler
from rlkit.replay.samplers import UniformSampler
from rlkit.train import main as train_main


def conf_node(path: str) -> dict[str, Any]:
    node = OmegaConf.to_container(OmegaConf.load(conf_dir() / path))
    assert isinstance(node, dict)
    return {k: v for k, v in node.items() if k != "defaults"}


def test_the_code_defaults_are_conf_s() -> None:
    dqn = conf_node("agent/dqn.yaml")
    defaults = {f.name: f.default for f in dataclasses.fields(DQNSettings)}
    assert dqn.pop("type") == "dqn"
    assert dqn.pop("distribution") == dataclasses.asdict(defaults["distribution"])
    assert dqn == {k: v for k, v in defaults.items() if k not in ("sampler", "replay", "head", "distribution")}
    assert defaults["sampler"] == UniformSampling() and dataclasses.asdict(UniformSampling()) == conf_node(
        "agent/sampler/uniform.yaml")
    prioritized = conf_node("agent/sampler/prioritized.yaml")
    assert prioritized.pop("beta_steps") == "${total_steps}"  # resolved at run start: no code default to disagree with
    sampling = dataclasses.asdict(PrioritizedSampling(beta_steps=1))
    assert {k: v for k, v in sampling.items() if k != "beta_steps"} == prioritized
    train = OmegaConf.load(conf_dir() / "train.yaml")
    assert {"replay": "transitions"} in OmegaConf.to_container(train.defaults)
    assert (defaults["replay"], defaults["head"].type) == ("transitions", train.net.head.type) == (
        "transitions", "linear")
    assert dataclasses.asdict(defaults["head"]) == OmegaConf.to_container(train.net.head)  # noisy false, sigma0 0.5
    assert {k: conf_node(f"replay/{k}.yaml") for k in REPLAYS} == {"transitions": {"type": "transitions"},
        "frames": {"type": "frames"}}
    assert sorted(OPTION_KEYS) == sorted(
        f"agent.sampler.{f.name}" for f in dataclasses.fields(PrioritizedSampling) if f.name != "type")


def test_the_tabular_agent_s_code_defaults_are_conf_s() -> None:
    import inspect

    from rlkit.agents.tabular import QLearningAgent

    q_learning = conf_node("agent/q_learning.yaml")
    defaults = {
        name: p.default for name, p in inspect.signature(QLearningAgent).parameters.items()
        if p.default is not inspect.Parameter.empty and name in q_learning
    }
    assert defaults == {"initial_q": 0.0, "metrics_every_steps": 1000}  # the others have no code default
    assert all(q_learning[name] == value for name, value in defaults.items())


def test_the_video_settings_defaults_are_conf_s_and_each_is_checked_once() -> None:
    train = OmegaConf.to_container(OmegaConf.load(conf_dir() / "train.yaml").video)
    assert dataclasses.asdict(VideoSettings()) == train and train["frame_stride"] == 2  # the comparison can fail
    assert video_settings({"every_steps": 5, "size": [84, 96]}) == VideoSettings(every_steps=5, size=(84, 96))
    with pytest.raises(RlkitError, match=r"^video.max_steps must be >= 1, got 0$"):
        video_settings({"max_steps": 0})
    with pytest.raises(RlkitError, match=r"^video.scale in /x/checkpoint.pt must be in \(0, 4\], got 9.0$"):
        video_settings({"scale": 9.0}, origin="/x/checkpoint.pt")


def test_the_registries_name_the_parts() -> None:
    assert (REPLAYS, SAMPLERS) == ({"transitions": ReplayBuffer, "frames": FrameReplayBuffer},
                                   {"uniform": UniformSampler, "prioritized": PrioritizedSampler})
    assert (registry.REPLAYS, registry.SAMPLERS, registry.HEADS) == (REPLAYS, SAMPLERS, HEADS)
    assert HEADS["dueling"] is DuelingHead and isinstance(HEADS["linear"](in_features=3, n_actions=2).linear.weight,
        object)


PRIORITIZED = {"type": "prioritized", "alpha": 0.5, "beta_start": 0.4, "beta_steps": 300, "eps": 1e-6}


def parts(*, agent: dict[str, Any] | None = None, net: dict[str, Any] | None = None, **nodes: Any) -> PartsSettings:
    config = {"agent": {"type": "dqn", **(agent or {})}, "net": {"type": "mlp", **(net or {})},
        "optim": {"type": "adam"}, **nodes}
    return check_parts(config)


def test_one_pass_makes_frozen_typed_settings() -> None:
    made = parts(agent={"gamma": 0.9, "sampler": PRIORITIZED}, net={"head": {"type": "dueling"}},
        replay={"type": "frames"})
    assert isinstance(made.settings, DQNSettings) and made.agent == "dqn"
    assert made.settings == DQNSettings(gamma=0.9, sampler=PrioritizedSampling(alpha=0.5, beta_steps=300),
        replay="frames", head=HeadSettings(type="dueling"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.settings.gamma = 0.5  # type: ignore[misc]
    # A config written in code without sampler, replay or head: conf/'s choices.
    assert parts().settings == DQNSettings()


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        ({"agent": {"sampler": {"type": "uniform", "alpha": 0.5}}},
         "agent.sampler.alpha is not a setting of agent.sampler=uniform; agent/sampler=prioritized takes it"),
        ({"agent": {"sampler": {"type": "rank"}}},
            "agent.sampler.type=rank is not known; choose one of: uniform, prioritized"),
        ({"agent": {"sampler": {k: v for k, v in PRIORITIZED.items() if k != "beta_steps"}}},
         "agent.sampler.beta_steps is missing; agent.sampler.type=prioritized needs it: pick the part with "
         "agent/sampler=prioritized"),
        ({"agent": {"sampler": {**PRIORITIZED, "beta_steps": 0}}}, "agent.sampler.beta_steps must be >= 1, got 0"),
        ({"agent": {"sampler": {**PRIORITIZED, "beta_start": 1.5}}},
            "agent.sampler.beta_start must be in [0, 1], got 1.5"),
        ({"agent": {"sampler": {**PRIORITIZED, "alpha": -1.0}}},
            "agent.sampler.alpha must be >= 0 (0 is uniform), got -1.0"),
        ({"agent": {"sampler": {**PRIORITIZED, "eps": 0.0}}},
         "agent.sampler.eps must be > 0 (a zero priority is never replayed), got 0.0"),
        ({"agent": {"sampler": {**PRIORITIZED, "alpha": "high"}}}, "agent.sampler.alpha"),
        ({"replay": {"type": "episodes"}}, "replay.type=episodes is not known; choose one of: transitions, frames"),
        ({"replay": {"type": "frames", "capacity": 5}}, "replay.capacity is not a setting of replay=frames"),
        ({"net": {"head": {"type": "distributional"}}},
            "net.head.type=distributional is not known; choose one of: linear, dueling"),
        ({"net": {"head": {"type": "linear", "hidden": 16}}}, "net.head.hidden is not a setting of net.head=linear"),
        ({"agent": {"dueling": True}}, "agent.dueling is now net.head.type: use net.head.type=dueling"),
        ({"agent": {"priority_eps": 0.1}},
            "agent.priority_eps is now agent.sampler.eps: use agent/sampler=prioritized agent.sampler.eps=0.1"),
        ({"agent": {"batch_size": 128, "buffer_size": 64}},
         "agent.batch_size=128 is larger than agent.buffer_size=64; lower the batch or grow the buffer"),
        ({"agent": {"tau": 0.0}}, "agent.tau must be in (0, 1] (1 is a hard copy), got 0.0"),
        ({"agent": {"loss": "l1"}}, "agent.loss=l1 is not known; choose one of: huber, mse"),
    ],
)
def test_a_bad_part_is_one_line_naming_the_key(nodes: dict[str, Any], message: str) -> None:
    with pytest.raises(RlkitError) as refused:
        parts(**nodes)
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)


def test_a_tabular_agent_refuses_a_sampler_and_takes_the_run_s_other_nodes() -> None:
    config = {"agent": {"type": "q_learning", "sampler": {"type": "uniform"}}, "net": {"type": "mlp",
        "head": {"type": "linear"}},
              "optim": {"type": "adam"}, "replay": {"type": "transitions"}}
    with pytest.raises(RlkitError, match=r"^agent.sampler is not a setting of agent=q_learning$"):
        check_parts(config)
    assert check_parts({**config, "agent": {"type": "q_learning", "gamma": 0.9}}).settings == {"gamma": 0.9}


def test_an_old_atari_config_names_its_parts() -> None:
    """Flags a checkpoint stored before the parts had names, mapped by table: a non-bool flag is left to be refused."""
    old = {
        "agent": {"type": "dqn", "dueling": False, "prioritized": False, "priority_alpha": 0.6,
            "priority_beta_start": 0.4,
                  "priority_beta_steps": 100, "priority_eps": 1e-6, "dedup_frames": True, "gamma": 0.99},
        "net": {"type": "cnn"}, "env": {"builder": "atari", "game": "Pong", "dedup_frames": True},
    }
    new = upgrade_stored_config(old)
    assert (new["agent"], new["net"], new["replay"], new["env"]) == (
        {"type": "dqn", "gamma": 0.99, "sampler": {"type": "uniform"}, "distribution": {"type": "expected"}},
        {"type": "cnn", "head": {"type": "linear", "noisy": False, "sigma0": 0.5}},
        {"type": "frames"}, {"builder": "atari", "game": "Pong"},
    )
    assert old["agent"]["dedup_frames"] is True and "replay" not in old  # what was read is left as it was
    bad = upgrade_stored_config({**old, "agent": {"type": "dqn", "dueling": "yes"}})
    assert bad["agent"] == {"type": "dqn", "dueling": "yes",
        "sampler": {"type": "uniform"}, "distribution": {"type": "expected"}}  # refused by the checks, by name


def test_a_run_checks_its_parts_once(tmp_path, capsys, monkeypatch) -> None:
    """check_job, then the run, build from the settings check_run_config made: each node is checked once a process."""
    counts = {"check_parts": 0, "dqn_settings": 0}

    def counted(name: str, real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(settings, "check_parts", counted("check_parts", settings.check_parts))
    monkeypatch.setattr(registry, "dqn_settings", counted("dqn_settings", dqn_config.dqn_settings))
    code, _, err = run_main(train_main, "env=cartpole", "total_steps=200", "agent.learning_starts_steps=100",
        "eval_every_steps=0",
                            "final_eval_episodes=1", "progress=false", f"hydra.run.dir={tmp_path / 'run'}",
                                capsys=capsys)
    assert code == 0, err
    assert counts == {"check_parts": 1, "dqn_settings": 1}


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        ({"replay": {"type": "frames", "_target_": "os.system"}},
         "replay._target_ in /r/checkpoint.pt: rlkit never instantiates a _target_; "
         "a config names its class with type:"),
        ({"agent": {"sampler": {"type": "${oc.env:HOME}"}}},
         "agent.sampler.type in /r/checkpoint.pt=${oc.env:HOME}: interpolations (${...}) in data are never resolved"),
        ({"net": {"head": {"_target_": "rlkit.checkpoint.torch.load"}}},
            "net.head._target_ in /r/checkpoint.pt: rlkit never instantiates"),
        ({"agent": {"sampler": "prioritized"}},
            "agent.sampler in /r/checkpoint.pt must be a mapping with a type: key, got prioritized"),
        ({"agent": {"prioritized": "rlkit.checkpoint.torch.load"}},
         "agent.prioritized is now agent/sampler: use agent/sampler=prioritized (in /r/checkpoint.pt)"),
    ],
)
def test_a_run_folder_s_part_nodes_are_data(nodes: dict[str, Any], message: str) -> None:
    """What a checkpoint says of its parts is looked up by name, never instantiated or resolved."""
    config = {"agent": {"type": "dqn", **nodes.pop("agent", {})}, "net": {"type": "mlp", **nodes.pop("net", {})},
        "optim": {"type": "adam"}, **nodes}
    with pytest.raises(RlkitError) as refused:
        check_parts(config, origin="/r/checkpoint.pt")
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)
