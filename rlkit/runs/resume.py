"""`resume=<run>`: the folder's recorded overrides accepted only as plain settings of known keys, the config composed
from this installation's conf/ and compared with the checkpoint's, before anything in the folder is written."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rlkit.agents.base import Agent, ReplayOwner
from rlkit.checkpoint import check_arrays, load_arrays
from rlkit.cli.app import check_group_overrides
from rlkit.cli.overrides import (
    OPTION_KEYS,
    checked_data_overrides,
    compose,
    compose_checked,
    config_keys,
    parse_overrides,
)
from rlkit.config.registry import check_acting_parts
from rlkit.config.settings import RESUMABLE_KEYS, VIDEO_KEYS, check_run_config, lookup, plain_config, run_settings
from rlkit.envs.builders import make_env
from rlkit.errors import RlkitError
from rlkit.plain import flatten, load_plain_yaml, show
from rlkit.run_files import check_no_links_out, read_run_text
from rlkit.run_folder import FILENAME, REPLAY_FILENAME
from rlkit.runs.rng import set_env_rng_state, set_rng_state
from rlkit.runs.saved import check_saved_network, from_saved_state, read_saved_run

RESUME_GROUPS = ("device",)  # the one config group a resumed run may switch


@dataclass(frozen=True)
class ResumePlan:
    """An accepted resume: the folder, the config to run (learning settings as the checkpoint's), the names."""

    run_dir: Path
    config: dict[str, Any]
    env_name: str
    agent_name: str
    step: int


def _recorded_overrides(run_dir: Path) -> list[str]:
    path = run_dir / ".hydra" / "overrides.yaml"
    if not os.path.lexists(path):
        raise RlkitError(f"resume={run_dir} is not an rlkit run folder (no .hydra/overrides.yaml)")
    try:
        text = read_run_text(path, root=run_dir)
        lines = load_plain_yaml(text, what=str(path))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RlkitError(f"{path} is not valid YAML ({type(exc).__name__}); it was not written by "
            "rlkit.train") from None
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        raise RlkitError(f"{path} must be a list of key=value lines")
    return [line for line in lines if not line.startswith("resume=")]  # recorded by older resumes


def _learning_differences(composed: Mapping[str, Any], saved: Mapping[str, Any]) -> list[str]:
    ours, theirs = flatten(composed), flatten(saved)
    keys = sorted(k for k in (ours.keys() | theirs.keys()) - set(RESUMABLE_KEYS) if not k.startswith("video."))
    return [key for key in keys if ours.get(key, "<missing>") != theirs.get(key, "<missing>")]


def _without_unused_sampler_settings(lines: list[str], conf: Path, groups: Sequence[str]) -> list[str]:
    """Recorded lines minus sampler settings a uniformly sampling run never used (an old run could set
    agent.priority_alpha without agent.prioritized=true; its stored config does not keep it)."""
    settings = [line for line in lines if line.partition("=")[0] in OPTION_KEYS]
    if not settings:
        return lines
    choices = [line for line in lines if line.partition("=")[0] in groups or "/" in line.partition("=")[0]]
    keys = config_keys(compose(conf, "train", choices))
    return [line for line in lines if line not in settings or line.partition("=")[0] in keys]


def prepare_resume(run_dir: Path, new_overrides: Sequence[str], *, conf: Path, groups: Sequence[str]) -> ResumePlan:
    """Check everything a resume needs, writing nothing: the checkpoint, the recorded command, the new settings."""
    allowed = (*RESUMABLE_KEYS, *RESUME_GROUPS)
    new = check_group_overrides(new_overrides, conf, RESUME_GROUPS)
    for override in parse_overrides(new):
        resumable = override.key_or_group in allowed or override.key_or_group.startswith("video.")
        if not resumable or override.is_sweep_override() or "${" in override.input_line:
            raise RlkitError(f"resume refuses {override.input_line}: it would change what the run learns or where it "
                f"goes; a resumed run may change {', '.join(allowed)}, video.*; start a new run to change "
                f"{override.key_or_group}")
    if not run_dir.is_dir():
        raise RlkitError(f"resume={run_dir} does not exist; pass a run folder that rlkit.train printed")
    check_no_links_out(run_dir)
    recorded = _recorded_overrides(run_dir)
    if not os.path.lexists(run_dir / FILENAME):
        raise RlkitError(f"resume={run_dir} has no {FILENAME} yet; start a new run instead")
    saved = read_saved_run(run_dir)
    with closing(make_env(saved.config["env"])) as env:  # before check_job builds the config's network for real
        check_saved_network(saved, check_acting_parts(saved.config, origin=str(saved.path)), env)
    origin = str(run_dir / ".hydra" / "overrides.yaml")
    checked = [o.input_line for o in checked_data_overrides(recorded, origin=origin)]
    accepted = _without_unused_sampler_settings(check_group_overrides(checked, conf, groups), conf, groups)
    cfg = compose_checked(conf, "train", parse_overrides(accepted), groups=groups, entry="rlkit.train")
    names = (str(cfg.hydra.runtime.choices.env), str(cfg.hydra.runtime.choices.agent))
    if names != (saved.env_name, saved.agent_name):
        raise RlkitError(f"checkpoint in {run_dir} is for env={saved.env_name} agent={saved.agent_name}, not "
            f"{names[0]}/{names[1]}")
    composed = plain_config(cfg)
    check_run_config(composed, origin=origin)
    differ = _learning_differences(composed, saved.config)
    if differ:
        first, more = differ[0], f" (and {len(differ) - 1} more: {', '.join(differ[1:4])})" if len(differ) > 1 else ""
        raise RlkitError(f"resume refuses {run_dir}: this installation's conf/ gives {first}="
            f"{show(flatten(composed).get(first))} where its checkpoint has {show(flatten(saved.config).get(first))}"
            f"{more}; a resumed run must learn as it started: start a new run instead")
    given = flatten(plain_config(compose(conf, "train", [*accepted, *new])))
    named = {"device.name" if o.key_or_group == "device" else o.key_or_group for o in parse_overrides(new)}
    config = dict(composed)  # learning settings: as composed, equal to the checkpoint's
    for key in RESUMABLE_KEYS:  # the others: as the last run left them, unless given now
        node, leaf = (config, key) if "." not in key else (config[key.split(".")[0]], key.split(".")[1])
        node[leaf] = given[key] if key in named else lookup(saved.config, key)
    saved_video = saved.config.get("video") if isinstance(saved.config.get("video"), Mapping) else {}
    config["video"] = {  # shown, not learned: as given now, else as the last run left them, else conf/'s
        key: given[f"video.{key}"] if f"video.{key}" in named else saved_video.get(key, given[f"video.{key}"])
        for key in VIDEO_KEYS}
    settings = run_settings(config)
    if settings.checkpoint_replay and (run_dir / REPLAY_FILENAME).is_file():
        check_arrays(run_dir / REPLAY_FILENAME)  # headers and sizes, before the lock; restore() checks them in full
    total_steps = settings.total_steps
    if saved.step >= total_steps:
        raise RlkitError(f"run {run_dir} already reached step {saved.step} of total_steps={total_steps}; pass "
            "total_steps=<more> to go on")
    return ResumePlan(run_dir, config, saved.env_name, saved.agent_name, saved.step)


def restore(plan: ResumePlan, *, agent: Agent, env: Any, with_replay: bool) -> int:
    """Load the run's checkpoint into agent, env and the global RNGs (under the run's lock); the step to go on from."""
    saved = read_saved_run(plan.run_dir)  # again: another writer may have finished since the plan was made
    if saved.step != plan.step:
        raise RlkitError(f"{saved.path} moved from step {plan.step} to {saved.step} while this resume started; "
            "run it again")
    from_saved_state(saved, lambda: agent.load_state_dict(saved.agent_state))
    try:
        set_rng_state(saved.rng)
        set_env_rng_state(env, saved.env_rng)
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        raise RlkitError(f"{saved.path} holds RNG states this run cannot use ({type(exc).__name__} {exc})") from None
    replay = restore_replay_with_note(plan.run_dir, agent, saved.step) if with_replay else ""
    print(f"rlkit: resuming {plan.run_dir} from step {saved.step}{replay}")
    return saved.step


def restore_replay_with_note(run_dir: Path, agent: Agent, step: int) -> str:
    """Load replay.npz when it belongs to this checkpoint; the note returned for the resume line says what happened."""
    path = run_dir / REPLAY_FILENAME
    if not isinstance(agent, ReplayOwner) or not os.path.lexists(path):
        return " (no saved replay: the buffer refills before learning resumes)"
    replay = getattr(agent, "replay", None)  # the buffer restore fills: its arrays' names, shapes and dtypes
    layout = {} if replay is None else {name: (array.shape, array.dtype) for name, array in replay.state_dict().items()}
    arrays = load_arrays(path, {**layout, "step": ((), np.dtype(np.int64))} if layout else None)
    saved_step = arrays.pop("step", None)
    if saved_step is None or saved_step.shape != () or int(saved_step) != step or not arrays:
        return " (saved replay is from another step: the buffer refills before learning resumes)"
    try:
        count = agent.load_replay_arrays(arrays)
    except ValueError as exc:
        raise RlkitError(f"{path} does not fit this run ({exc}); delete it to resume without its replay") from None
    return f" with its replay buffer ({count:,} transitions)"
