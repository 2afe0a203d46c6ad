"""Env config nodes to gymnasium envs: the builders by name, gym ids, and Atari's preprocessing."""
