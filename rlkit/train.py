"""python -m rlkit.train: the command line of a training run, a sweep or a resume.
The run itself (rlkit.runs.training) is imported only once one is checked or started, so `--help` comes up at once."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from rlkit.cli.app import PLUGIN_GROUPS, App, conf_dir, one_line_errors, report_errors, run_hydra_app
from rlkit.cli.overrides import compose
from rlkit.cli.streams import quiet_closed_pipes
from rlkit.errors import RlkitError

CONFIG_GROUPS = ("env", "agent", "agent/sampler", "net", "optim", "replay", "preset", "device")


def check_job(cfg: DictConfig) -> None:
    """Everything that can refuse a run, before Hydra makes its folder (rlkit.runs.training.check_job)."""
    from rlkit.runs import training

    training.check_job(cfg)


def choose_parts(overrides: Sequence[str]) -> list[str]:
    """env=gym: the agent and net the env's spaces call for, where the command line names none."""
    given = dict(line.partition("=")[::2] for line in overrides)
    if given.get("env") != "gym" or {"agent", "net"} <= given.keys():
        return []
    from rlkit.envs.builders import parts_for_env

    env_lines = [line for line in overrides if line.split("=")[0].lstrip("+").startswith("env.")]
    env_cfg = OmegaConf.to_container(compose(conf_dir(), "train", ["env=gym", *env_lines]).env, resolve=True)
    parts, why = parts_for_env(env_cfg, agent=given.get("agent"))
    print(f"rlkit: {why} (agent= and net= choose others)", flush=True)
    return [f"{group}={name}" for group, name in parts.items() if group not in given]


@hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="train")
@report_errors
def _hydra_main(cfg: DictConfig) -> float:
    from rlkit.runs import training

    runtime = HydraConfig.get().runtime  # env and agent: as chosen on the command line or by defaults
    result = training.run(cfg, Path(runtime.output_dir), env_name=str(runtime.choices.get("env")),
        agent_name=str(runtime.choices.get("agent")))
    return result.final_eval.mean if result.final_eval else float("nan")


APP = App(name="rlkit.train", conf=conf_dir(), config_name="train", groups=CONFIG_GROUPS, check=check_job,
    new_run_hint="python -m rlkit.train resume={run_dir}", hydra_groups=PLUGIN_GROUPS, choose=choose_parts)


def resume_main(argv: list[str]) -> None:
    """`resume=<run> [total_steps=N ...] [env_module=<module>]`: prepared by rlkit.runs.resume, checked like a fresh
    job, run without Hydra. env_module imports the module that registers a run's own env (env.id=<module>:<EnvId>)."""
    from rlkit.envs.gym import import_env_module
    from rlkit.runs import training
    from rlkit.runs.resume import prepare_resume

    with one_line_errors():
        for module in [arg.partition("=")[2] for arg in argv if arg.startswith("env_module=")]:
            import_env_module(module)  # named on this command line: a run folder never chooses code to import
        argv = [arg for arg in argv if not arg.startswith("env_module=")]
        if any(arg.startswith("-") for arg in argv):
            raise RlkitError("resume= continues one run and takes key=value settings only (no -m, --cfg or other "
                "flags)")
        targets = [arg.partition("=")[2] for arg in argv if arg.startswith("resume=")]
        if len(targets) != 1 or not targets[0]:
            raise RlkitError("resume= needs exactly one run folder: python -m rlkit.train "
                "resume=runs/<env>/<agent>/<timestamp>")
        others = [arg for arg in argv if not arg.startswith("resume=")]
        plan = prepare_resume(Path(targets[0]).expanduser(), others, conf=conf_dir(), groups=CONFIG_GROUPS)
        training.check_job(plan.config, resumed=True)
        training.run(plan.config, plan.run_dir, env_name=plan.env_name, agent_name=plan.agent_name, resume=plan)


def main() -> None:
    argv = sys.argv[1:]
    with quiet_closed_pipes():
        if any(arg.startswith("resume=") for arg in argv):
            resume_main(argv)
        else:
            run_hydra_app(_hydra_main, APP)


if __name__ == "__main__":
    main()
