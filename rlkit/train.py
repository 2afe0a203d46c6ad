"""python -m rlkit.train: the composition root. Build env, agent and logger from the config; run the loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from rlkit import tb
from rlkit.agents import build_agent
from rlkit.checkpoint import FILENAME, save_checkpoint
from rlkit.cli import report_errors, run_hydra_app
from rlkit.envs import make_env, make_train_env, single_spaces
from rlkit.errors import RlkitError
from rlkit.loop import TrainResult, evaluate, train
from rlkit.runtime import conf_dir, resolve_device, seed_everything, set_torch_threads

CONFIG_GROUPS = ("env", "agent", "device", "net", "optim")


def validate(cfg: DictConfig) -> None:
    """Refuse settings that cannot describe a run, naming the bad value."""
    for key in ("total_steps", "eval_episodes", "final_eval_episodes", "log_every_steps"):
        if int(cfg[key]) <= 0:
            raise RlkitError(f"{key} must be a positive number of steps/episodes, got {cfg[key]}")
    if int(cfg.eval_every_steps) < 0:
        raise RlkitError(f"eval_every_steps must be >= 0 (0 disables evaluation), got {cfg.eval_every_steps}")


def run_names() -> tuple[str, str]:
    """(env, agent) names of the running Hydra job, as chosen on the command line or by defaults."""
    choices = HydraConfig.get().runtime.choices
    return str(choices.get("env")), str(choices.get("agent"))


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
    logger = tb.Logger(run_dir)

    def save(step: int) -> None:
        payload = {"env": env_name, "agent": agent_name, "step": step, "config": config, "agent_state": agent.state_dict()}
        save_checkpoint(run_dir / FILENAME, payload)

    print(f"rlkit: env={env_name} ({env.spec.id if env.spec else cfg.env.id}) agent={agent_name} device={device} -> {run_dir}")
    try:
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
            on_checkpoint=save,
            progress=bool(cfg.progress),
        )
        final = evaluate(eval_env, agent, episodes=int(cfg.final_eval_episodes), seed=int(cfg.seed) + 1_000_000)
        result.evaluations.append((result.steps, final))
        logger.scalar(tb.EVAL_RETURN_MEAN, final.mean, result.steps)
        logger.scalar(tb.EVAL_RETURN_STD, final.std, result.steps)
        logger.hparams(_hparams(config, env_name, agent_name), {"eval/return_mean": final.mean, "time/steps_per_sec": result.steps_per_sec})
    finally:
        logger.close()
        env.close()
        eval_env.close()
    _print_summary(result, run_dir, device=str(device), final_episodes=int(cfg.final_eval_episodes))
    return result


def _hparams(config: dict[str, Any], env_name: str, agent_name: str) -> dict[str, Any]:
    return {"env": env_name, "agent_name": agent_name, **{k: v for k, v in config.items() if k != "progress"}}


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


@hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="train")
@report_errors
def _hydra_main(cfg: DictConfig) -> float:
    env_name, agent_name = run_names()
    result = run(cfg, Path(HydraConfig.get().runtime.output_dir), env_name=env_name, agent_name=agent_name)
    return result.final_eval.mean if result.final_eval else float("nan")


def main() -> None:
    run_hydra_app(_hydra_main, conf_dir(), CONFIG_GROUPS)


if __name__ == "__main__":
    main()
