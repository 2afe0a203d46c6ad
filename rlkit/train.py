"""python -m rlkit.train: the composition root. Build env, agent and logger from the config; run the loop."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from rlkit import tb
from rlkit.agents import Agent, build_agent, load_agent_state
from rlkit.checkpoint import FILENAME, REPLAY_FILENAME, load_arrays, load_checkpoint, save_arrays, save_checkpoint
from rlkit.cli import report_errors, run_hydra_app
from rlkit.envs import env_rng_state, make_env, make_train_env, set_env_rng_state, single_spaces
from rlkit.errors import NonFiniteLossError, RlkitError
from rlkit.eval_video import build_eval_video
from rlkit.loop import Evaluation, TrainResult, evaluate, train
from rlkit.plots import plot_learning_curve
from rlkit.resume import resume_argv
from rlkit.runtime import GracefulStop, conf_dir, resolve_device, rng_state, seed_everything, set_rng_state, set_torch_threads

CONFIG_GROUPS = ("env", "agent", "device", "net", "optim", "preset")


def validate(cfg: DictConfig) -> None:
    """Refuse settings that cannot describe a run, naming the bad value."""
    for key in ("total_steps", "eval_episodes", "final_eval_episodes", "log_every_steps"):
        if int(cfg[key]) <= 0:
            raise RlkitError(f"{key} must be a positive number of steps/episodes, got {cfg[key]}")
    for key, value in (("eval_every_steps", cfg.eval_every_steps), ("checkpoint.every_steps", cfg.checkpoint.every_steps)):
        if int(value) < 0:
            raise RlkitError(f"{key} must be >= 0 (0 disables it), got {value}")


def run_names() -> tuple[str, str]:
    """(env, agent) names of the running Hydra job, as chosen on the command line or by defaults."""
    choices = HydraConfig.get().runtime.choices
    return str(choices.get("env")), str(choices.get("agent"))


def restore(
    run_dir: Path, *, agent: Agent, env: Any, env_name: str, agent_name: str, total_steps: int, with_replay: bool = False
) -> int:
    """Load the run's checkpoint into agent, env and global RNGs; return the step to continue from."""
    data = load_checkpoint(run_dir)
    if (data.get("env"), data.get("agent")) != (env_name, agent_name):
        raise RlkitError(f"checkpoint in {run_dir} is for env={data.get('env')} agent={data.get('agent')}, not {env_name}/{agent_name}")
    load_agent_state(agent, data, run_dir)
    step = int(data["step"])
    if step >= total_steps:
        raise RlkitError(f"run {run_dir} already reached step {step} of total_steps={total_steps}; pass total_steps=<more> to go on")
    set_rng_state(data["rng"])
    set_env_rng_state(env, data["env_rng"])
    print(f"rlkit: resuming {run_dir} from step {step}{restore_replay(run_dir, agent, env, step) if with_replay else ''}")
    return step


def replay_arrays(agent: Agent, agent_name: str) -> dict[str, np.ndarray]:
    if not hasattr(agent, "replay_arrays"):
        raise RlkitError(f"agent={agent_name} keeps no replay buffer; drop checkpoint.replay=true")
    return agent.replay_arrays()


def restore_replay(run_dir: Path, agent: Any, env: Any, step: int) -> str:
    """Load replay.npz when it belongs to this checkpoint; otherwise the buffer refills before learning."""
    path = run_dir / REPLAY_FILENAME
    if not path.is_file():
        return " (no saved replay: the buffer refills before learning resumes)"
    arrays = load_arrays(path)
    if int(arrays.pop("step")) != step:
        return " (saved replay is from another step: the buffer refills before learning resumes)"
    agent.load_replay_arrays(arrays, num_envs=getattr(env, "num_envs", 1))
    return f" with its replay buffer ({len(agent.replay):,} transitions)"


def run(cfg: DictConfig, run_dir: Path, *, env_name: str, agent_name: str) -> TrainResult:
    validate(cfg)
    device = resolve_device(cfg.device.name)
    set_torch_threads(cfg.get("torch_threads"))
    seed_everything(int(cfg.seed))
    env = make_train_env(cfg.env)
    eval_env = make_env(cfg.env)
    observation_space, action_space = single_spaces(env)
    agent = build_agent(
        cfg.agent, observation_space=observation_space, action_space=action_space, device=device, seed=int(cfg.seed)
    )
    config = OmegaConf.to_container(cfg, resolve=True)
    if cfg.checkpoint.replay:
        replay_arrays(agent, agent_name)  # refuse agents without a replay buffer before training, not at the first save
    start_step = 0
    if cfg.resume:
        env.reset(seed=int(cfg.seed))  # create the env RNGs that restore() overwrites
        start_step = restore(
            run_dir, agent=agent, env=env, env_name=env_name, agent_name=agent_name, total_steps=int(cfg.total_steps),
            with_replay=bool(cfg.checkpoint.replay),
        )
    # purge_step hides events the interrupted run logged after its checkpoint: no step is logged twice.
    logger = tb.Logger(run_dir, purge_step=start_step or None)
    video = build_eval_video(cfg.get("video"), env_cfg=cfg.env, logger=logger, agent=agent, seed=int(cfg.seed))  # checked before training

    last_saved: int | None = start_step if cfg.resume else None

    def save(step: int) -> None:
        nonlocal last_saved
        if cfg.checkpoint.replay:  # first, so a replay file never claims a step its checkpoint has not reached
            save_arrays(run_dir / REPLAY_FILENAME, {**replay_arrays(agent, agent_name), "step": np.array(step)})
        payload = {
            "env": env_name, "agent": agent_name, "step": step, "config": config,
            "agent_state": agent.state_dict(), "rng": rng_state(), "env_rng": env_rng_state(env),
        }
        save_checkpoint(run_dir / FILENAME, payload)
        last_saved = step

    print(f"rlkit: env={env_name} ({env.spec.id if env.spec else cfg.env.id}) agent={agent_name} device={device} -> {run_dir}", flush=True)
    try:
        with GracefulStop() as stop:
            result = train(
                env=env,
                agent=agent,
                logger=logger,
                total_steps=int(cfg.total_steps),
                seed=int(cfg.seed),
                eval_env=eval_env,
                eval_every_steps=int(cfg.eval_every_steps),
                eval_episodes=int(cfg.eval_episodes),
                log_every_steps=int(cfg.log_every_steps),
                checkpoint_every_steps=int(cfg.checkpoint.every_steps),
                on_checkpoint=save,
                start_step=start_step,
                stop=stop,
                progress=bool(cfg.progress),
                video=video,
            )
        if result.interrupted:
            print(
                f"rlkit: stopped by {stop.signal_name} at step {result.steps}; checkpoint saved.\n"
                f"resume: python -m rlkit.train resume={run_dir}",
                file=sys.stderr,
            )
            sys.exit(130)
        final = evaluate(eval_env, agent, episodes=int(cfg.final_eval_episodes), seed=int(cfg.seed) + 1_000_000)
        result.evaluations.append(Evaluation(result.steps, result.train_seconds, final))
        logger.scalars({tb.EVAL_RETURN_MEAN: final.mean, tb.EVAL_RETURN_STD: final.std}, result.steps)
        logger.hparams(_hparams(config, env_name, agent_name), {"eval/return_mean": final.mean, "time/steps_per_sec": result.steps_per_sec})
    except NonFiniteLossError as exc:
        good = f"the last good checkpoint (step {last_saved}) is in {run_dir}" if last_saved is not None else "no checkpoint was saved yet"
        raise RlkitError(f"{exc}; stopped without saving that state; {good}; lower optim.lr or set agent.max_grad_norm") from None
    finally:
        logger.close()
        env.close()
        eval_env.close()
        if video is not None:
            video.close()
    _print_summary(result, run_dir, device=str(device), final_episodes=int(cfg.final_eval_episodes))
    if video is not None:
        print(f"videos: {video.recordings} greedy episodes in TensorBoard under {tb.EVAL_VIDEO} ({video.total_seconds:.1f} s, not in steps/s)")
    _write_learning_curve(result, run_dir / "learning_curve.png", title=f"{env_name} / {agent_name}, seed {cfg.seed}")
    return result


def _hparams(config: dict[str, Any], env_name: str, agent_name: str) -> dict[str, Any]:
    return {"env": env_name, "agent_name": agent_name, **{k: v for k, v in config.items() if k not in ("progress", "resume")}}


def _print_summary(result: TrainResult, run_dir: Path, *, device: str, final_episodes: int) -> None:
    final = result.final_eval
    assert final is not None
    print(
        f"done: {result.steps} steps, {result.episodes} episodes in {result.train_seconds:.1f} s "
        f"({result.steps_per_sec:,.0f} steps/s) on {device}\n"
        f"final evaluation over {final_episodes} greedy episodes: return {final.mean:.3f} +- {final.std:.3f}\n"
        f"run folder: {run_dir}\n"
        f"watch:  tensorboard --logdir {run_dir}\n"
        f"replay: python -m rlkit.play run={run_dir}"
    )


def _write_learning_curve(result: TrainResult, path: Path, *, title: str) -> None:
    """Issue 6: people would rather look than read. matplotlib is an optional extra: without it, say so and go on."""
    try:
        plot_learning_curve(
            path, train_returns=result.train_returns, evaluations=[(e.step, e.result.mean) for e in result.evaluations], title=title
        )
    except RlkitError as exc:
        print(f"curve:  skipped ({exc})")
        return
    print(f"curve:  {path}")


@hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="train")
@report_errors
def _hydra_main(cfg: DictConfig) -> float:
    env_name, agent_name = run_names()
    result = run(cfg, Path(HydraConfig.get().runtime.output_dir), env_name=env_name, agent_name=agent_name)
    return result.final_eval.mean if result.final_eval else float("nan")


def main() -> None:
    run_hydra_app(_hydra_main, conf_dir(), CONFIG_GROUPS, prepare=resume_argv)


if __name__ == "__main__":
    main()
