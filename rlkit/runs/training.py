"""One training run from plain config data, holding its folder's lock: env, agent, logger and checkpointer built,
the loop run, the final evaluation, the summary and the learning curve."""

from __future__ import annotations

import dataclasses
import shlex
import sys
import time
from collections.abc import Mapping
from contextlib import ExitStack, closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig

from rlkit import tb
from rlkit.agents import Agent, ReplayOwner
from rlkit.analysis.plots import plot_learning_curve
from rlkit.cli.app import hydra_quote
from rlkit.config.registry import PartsSettings, build_agent
from rlkit.config.settings import RunSettings, VideoSettings, check_run_config, plain_config
from rlkit.envs.builders import greedy_cap_note, make_env, make_train_env, single_spaces
from rlkit.errors import NonFiniteLossError, RlkitError
from rlkit.loop import Evaluation, TrainPlan, TrainResult, evaluate, train
from rlkit.run_folder import RunLock
from rlkit.runs.checkpointer import Checkpointer
from rlkit.runtime import GracefulStop, resolve_device, seed_everything, set_torch_threads

if TYPE_CHECKING:  # a resumed run's plan; rlkit.runs.resume loads only when a run resumes
    from rlkit.runs.resume import ResumePlan


def build_run_agent(parts: PartsSettings, env: Any, *, device: torch.device, settings: RunSettings, num_envs: int,
        resumed: bool) -> Agent:
    """The run's agent for this env's spaces and `num_envs` copies; a resumed one is built as restore() will fill it
    (rlkit.runs.saved.restoring, loaded only then). checkpoint.replay=true needs one that keeps a replay buffer."""
    if resumed:
        from rlkit.runs.saved import restoring

        parts = restoring(parts)
    observation_space, action_space = single_spaces(env)
    agent = build_agent(parts, observation_space=observation_space, action_space=action_space, device=device,
        seed=settings.seed, num_envs=num_envs)
    if settings.checkpoint_replay and not isinstance(agent, ReplayOwner):
        raise RlkitError(f"agent={parts.agent} keeps no replay buffer; drop checkpoint.replay=true")
    return agent


def eval_video(video: VideoSettings | None, **kwargs: Any) -> Any:
    """The run's evaluation-video recorder, or None; rlkit.watch's video code loads only when it records."""
    if video is None or video.every_steps == 0:
        return None
    from rlkit.watch.video import build_eval_video

    return build_eval_video(video, **kwargs)


_last_checked: list[tuple[dict[str, Any], RunSettings]] = []  # check_job's config and settings, which run() reuses


def checked_settings(config: Mapping[str, Any] | DictConfig) -> tuple[Mapping[str, Any], RunSettings]:
    """The config as plain data and its settings, checked once: run() after check_job checks nothing again."""
    if isinstance(config, DictConfig):
        config = plain_config(config)
    for seen, settings in _last_checked:
        if seen == config:
            return config, settings
    settings = check_run_config(config)
    assert settings.parts is not None
    _last_checked[:] = [(dict(config), settings)]
    return config, settings


def check_job(config: Mapping[str, Any] | DictConfig, *, resumed: bool = False) -> RunSettings:
    """Everything that can refuse a run, checked before its folder exists: values, the env, the agent (and its RAM),
    and what evaluation videos need."""
    config, settings = checked_settings(config)
    with closing(make_env(config["env"])) as env:  # one copy, but the agent is checked as the run will build it
        agent = build_run_agent(settings.parts, env, device=resolve_device(settings.device), settings=settings,
            num_envs=int(config["env"].get("num_envs", 1)), resumed=resumed)
    video = eval_video(settings.video, env_cfg=config["env"], logger=tb.Logger(None), policy=agent.policy(),
        seed=settings.seed)
    if video is not None:
        video.close()
    return settings


def run(config: Mapping[str, Any] | DictConfig, run_dir: Path, *, env_name: str, agent_name: str,
        resume: ResumePlan | None = None) -> TrainResult:
    """Train one run in run_dir, holding the folder's lock. `config` is plain data as a checkpoint stores it
    (a composed DictConfig is resolved into that first)."""
    started = time.perf_counter()
    config, settings = checked_settings(config)
    # Signals are caught from the start: a SIGTERM while the run is being set up stops it after its first step, saved.
    with RunLock(run_dir), GracefulStop() as stop, ExitStack() as to_close:
        device = resolve_device(settings.device)
        set_torch_threads(settings.torch_threads)
        seed_everything(settings.seed)
        env = to_close.enter_context(closing(make_train_env(config["env"])))
        eval_env = to_close.enter_context(closing(make_env(config["env"])))
        agent = build_run_agent(settings.parts, env, device=device, settings=settings,
            num_envs=getattr(env, "num_envs", 1), resumed=resume is not None)
        start_step = 0
        if resume is not None:
            from rlkit.runs.resume import restore

            env.reset(seed=settings.seed)  # create the env RNGs that restore() overwrites
            start_step = restore(resume, agent=agent, env=env, with_replay=settings.checkpoint_replay)
        # A resumed run hides what the interrupted one logged after its checkpoint, and keeps the checkpoint's own step.
        logger = to_close.enter_context(closing(tb.Logger(run_dir, purge_step=start_step + 1 if resume else None)))
        checkpointer = Checkpointer(run_dir, env_name=env_name, agent_name=agent_name, config=config, agent=agent,
            env=env, replay=agent if settings.checkpoint_replay and isinstance(agent, ReplayOwner) else None,
            last_good=start_step if resume is not None else None)
        video = eval_video(settings.video, env_cfg=config["env"], logger=logger, policy=agent.policy(),
            seed=settings.seed)
        if video is not None:
            to_close.callback(video.close)
        env_id = env.spec.id if env.spec else config["env"].get("id")
        print(f"rlkit: env={env_name} ({env_id}) agent={agent_name} device={device} -> {run_dir}"
            f"{greedy_cap_note(eval_env)}", flush=True)
        try:
            plan = TrainPlan(start_step=start_step, **{field.name: getattr(settings, field.name)
                for field in dataclasses.fields(TrainPlan) if field.name != "start_step"})
            result = train(env=env, agent=agent, plan=plan, logger=logger, eval_env=eval_env, saver=checkpointer,
                stop=stop, video=video)
            final = None if result.interrupted else evaluate(eval_env, agent.policy(),  # a stop ends it at once
                episodes=settings.final_eval_episodes, seed=settings.seed + 1_000_000,
                max_steps=settings.eval_max_steps, progress=settings.progress, desc="final evaluation", stop=stop)
            if final is None or final.stopped:
                print(f"rlkit: stopped by {stop.signal_name} at step {result.steps}; checkpoint saved.\n"
                    f"resume: python -m rlkit.train {shlex.quote(f'resume={run_dir}')}", file=sys.stderr)
                sys.exit(130)
            result.evaluations.append(Evaluation(result.steps, result.train_seconds, final))
            logger.scalars(tb.evaluation_metrics(final.mean, final.std, final.seconds), result.steps)
            hparams = {k: v for k, v in config.items() if k != "progress"}
            logger.hparams({"env": env_name, "agent_name": agent_name, **hparams},
                [tb.EVAL_RETURN_MEAN, tb.STEPS_PER_SEC])
        except NonFiniteLossError as exc:
            raise RlkitError(f"{exc}; stopped without saving that state; {checkpointer.describe_last_good()}; lower "
                "optim.lr or set agent.max_grad_norm") from None
    _print_summary(result, run_dir, device=str(device), settings=settings, wall_seconds=time.perf_counter() - started)
    if video is not None and video.recordings:
        print(f"videos: {video.recordings} greedy episodes in TensorBoard under {tb.EVAL_VIDEO} "
            f"({video.total_seconds:.1f} s, not in steps/s)")
    _write_learning_curve(result, run_dir / "learning_curve.png",
        title=f"{env_name} / {agent_name}, seed {settings.seed}")
    return result


def _print_summary(result: TrainResult, run_dir: Path, *, device: str, settings: RunSettings,
        wall_seconds: float) -> None:
    """What the run did, what each part of its time went to, and where to look next."""
    final = result.final_eval
    assert final is not None
    evaluations = len(result.evaluations)
    over = f"{final.episodes} greedy episode{'s' * (final.episodes != 1)}"
    if final.cut_short:
        over = (f"{final.episodes} of {settings.final_eval_episodes} greedy episodes "
            f"(eval_max_steps={settings.eval_max_steps} reached)")
    print(f"done: {result.steps} steps, {result.episodes} episodes on {device}\n"
        f"time: {result.train_seconds:.1f} s training ({result.steps_per_sec:,.0f} steps/s; evaluations and videos not "
        f"included), {result.eval_seconds:.1f} s in {evaluations} evaluation{'s' * (evaluations != 1)}, "
        f"{wall_seconds:.1f} s wall in all\n"
        f"final evaluation over {over}: return {final.mean:.3f} +- {final.std:.3f} ({final.seconds:.1f} s)\n"
        f"run folder: {run_dir}\n"
        f"watch:  tensorboard --logdir {run_dir}\n"
        f"replay: python -m rlkit.play {shlex.quote(f'run={hydra_quote(run_dir)}')}")


def _write_learning_curve(result: TrainResult, path: Path, *, title: str) -> None:
    """People would rather look than read. matplotlib is an optional extra: without it, say so and go on."""
    try:
        plot_learning_curve(path, train_returns=result.train_returns,
            evaluations=[(e.step, e.result.mean) for e in result.evaluations], title=title)
    except (RlkitError, OSError) as exc:  # the run and its checkpoint are saved: a curve is not worth losing them
        print(f"curve:  skipped ({exc})")
        return
    print(f"curve:  {path}")
