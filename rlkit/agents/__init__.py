"""Agents behind one interface; rlkit.config.registry maps the names configs use to these classes."""

from rlkit.agents.base import Agent, ReplayOwner, Transition, linear_schedule

__all__ = ["Agent", "ReplayOwner", "Transition", "linear_schedule"]
