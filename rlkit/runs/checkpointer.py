"""The loop's saver: the run's state written to its folder at a step, atomically, replay first."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rlkit.agents.base import Agent, ReplayOwner, check_finite_loss
from rlkit.checkpoint import save_arrays, save_checkpoint
from rlkit.errors import RlkitError
from rlkit.run_folder import FILENAME, REPLAY_FILENAME
from rlkit.runs.rng import env_rng_state, rng_state


class Checkpointer:
    """The loop's saver: writes checkpoint.pt (replay.npz first) and names the last checkpoint that reached the disk."""

    def __init__(self, run_dir: Path, *, env_name: str, agent_name: str, config: Mapping[str, Any], agent: Agent,
            env: Any, replay: ReplayOwner | None, last_good: int | None) -> None:
        """`replay`: the agent whose buffer goes to replay.npz (checkpoint.replay=true), or None."""
        self.run_dir, self.env_name, self.agent_name, self.config = run_dir, env_name, agent_name, dict(config)
        self.agent, self.env, self.replay, self.last_good = agent, env, replay, last_good

    def describe_last_good(self) -> str:
        if self.last_good is None:
            return "no checkpoint was saved yet"
        return f"the last good checkpoint (step {self.last_good}) is {self.run_dir / FILENAME}"

    def save(self, step: int) -> None:
        """Write the run's state at `step`, unless its loss has turned NaN/inf: a diverged network is never saved."""
        check_finite_loss(self.agent, step=step)
        try:
            if self.replay is not None:  # first, so a replay file never claims a step its checkpoint has not reached
                save_arrays(self.run_dir / REPLAY_FILENAME, {**self.replay.replay_arrays(), "step": np.array(step)})
            save_checkpoint(self.run_dir / FILENAME, {"env": self.env_name, "agent": self.agent_name, "step": step,
                "config": self.config, "agent_state": self.agent.state_dict(), "rng": rng_state(),
                "env_rng": env_rng_state(self.env)})
        except OSError as exc:  # a full disk: the previous checkpoint is intact (atomic writes)
            raise RlkitError(f"could not write the checkpoint of step {step} ({exc.strerror or exc}); "
                f"{self.describe_last_good()}") from None
        self.last_good = step


