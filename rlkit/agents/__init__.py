"""Agents behind one interface, and the policies they hand out for acting; rlkit.config.registry maps the names
configs use to these classes."""

from rlkit.agents.base import Agent, Policy, ReplayOwner, Transition, linear_schedule

__all__ = ["Agent", "Policy", "ReplayOwner", "Transition", "linear_schedule"]
