"""Config values as plain data, checked against annotations, never code: run folders hold configs that someone
else may have written, so nothing in them is instantiated, imported or resolved."""

from __future__ import annotations

import collections.abc
import math
import types
import typing
from collections.abc import Mapping
from typing import Any

import yaml

from rlkit.errors import RlkitError

PLAIN_SCALARS = (bool, int, float, str, type(None))
MAX_DEPTH = 16
SEQUENCES = (list, tuple, collections.abc.Sequence, collections.abc.Iterable)
MAX_YAML_DEPTH = 100
MAX_YAML_NODES = 100_000  # a run's config.yaml holds a few hundred


class _PlainLoader(yaml.SafeLoader):
    """SafeLoader refusing anchors and aliases (515 bytes of aliases expand to 10**9 values) and capping depth and
    values while composing, before any object is built."""

    def __init__(self, text: str, what: str) -> None:
        super().__init__(text)
        self.what, self.depth, self.nodes = what, 0, 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if getattr(self.peek_event(), "anchor", None) is not None:
            raise RlkitError(f"{self.what} holds a YAML anchor or alias (&name, *name); run records are plain data: "
                "remove it or move that run away")
        self.depth, self.nodes = self.depth + 1, self.nodes + 1
        if self.depth > MAX_YAML_DEPTH or self.nodes > MAX_YAML_NODES:
            raise RlkitError(f"{self.what} nests deeper than {MAX_YAML_DEPTH} levels or holds more than "
                f"{MAX_YAML_NODES:,} values; rlkit never writes that: move that run away")
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def load_plain_yaml(text: str, *, what: str) -> Any:
    """YAML from a run folder as plain values: yaml.safe_load's types, no anchors or aliases, bounded size. A bomb
    is an RlkitError naming `what`; other bad YAML stays a yaml.YAMLError for the caller to word."""
    loader = _PlainLoader(text, what)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def where_in(key: str, origin: str) -> str:
    """`agent.gamma`, or `agent.gamma in runs/x/checkpoint.pt` for data read from a file."""
    return f"{key} in {origin}" if origin else key


def show(value: Any) -> str:
    """A value as a user would type it on the command line."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):  # a long list is never formatted whole: its start and a count
        more = f",... ({len(value) - 8:,} more)" if len(value) > 8 else ""
        return "[" + ",".join(show(v) for v in value[:8]) + more + "]"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def refuse_code(node: Any, key: str, origin: str = "") -> None:
    """Refuse what could become code if handed to Hydra: `_target_`-style keys and `${...}` interpolations. An
    explicit stack, in the order a recursive walk takes; a node shared between places is visited once."""
    stack: list[tuple[Any, str, int, tuple[str, Any] | None]] = [(node, key, 0, None)]  # (.., (parent key, name))
    seen: set[int] = set()
    while stack:
        node, key, depth, entry = stack.pop()
        if entry is not None and not isinstance(entry[1], str):
            raise RlkitError(f"{where_in(entry[0], origin)} has a key {show(entry[1])} that is not a string")
        if entry is not None and len(entry[1]) > 2 and entry[1].startswith("_") and entry[1].endswith("_"):
            raise RlkitError(
                f"{where_in(key, origin)}: rlkit never instantiates a {entry[1]}; a config names its class "
                f"with type: (registered names only), so this node is refused"
            )
        if depth > MAX_DEPTH:
            raise RlkitError(f"{where_in(key, origin)} is nested deeper than {MAX_DEPTH} levels; configs are flat data")
        if isinstance(node, (Mapping, list, tuple)):
            if id(node) in seen:
                continue
            seen.add(id(node))
        if isinstance(node, Mapping):
            entries = reversed(list(node.items()))
            stack += [(v, f"{key}.{n}" if key else str(n), depth + 1, (key, n)) for n, v in entries]
        elif isinstance(node, (list, tuple)):
            stack += [(v, f"{key}[{i}]", depth + 1, None) for i, v in reversed(list(enumerate(node)))]
        elif isinstance(node, str) and "${" in node:
            raise RlkitError(f"{where_in(key, origin)}={show(node)}: interpolations (${{...}}) in data are never "
                "resolved")
        elif not isinstance(node, PLAIN_SCALARS):
            raise RlkitError(f"{where_in(key, origin)} holds a {type(node).__name__}; configs hold plain values only")


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def plain_value(value: Any, annotation: Any) -> tuple[bool, Any]:
    """(accepted, value as the constructor gets it) for a config value and a parameter annotation: plain values and
    lists of them, where the annotation asks for them; an integral float (1e5) counts as an integer, 1500.7 not."""
    if annotation is Any:
        if isinstance(value, (list, tuple)):
            return all(isinstance(v, PLAIN_SCALARS) for v in value), list(value)
        return isinstance(value, PLAIN_SCALARS), value
    if _is_union(annotation):
        for option in typing.get_args(annotation):
            accepted, converted = plain_value(value, option)
            if accepted:
                return True, converted
        return False, value
    if annotation is type(None) or annotation is None:
        return value is None, value
    if annotation is bool:
        return isinstance(value, bool), value
    if annotation is int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return True, int(value)
        return isinstance(value, int) and not isinstance(value, bool), value
    if annotation is float:
        try:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        except OverflowError:  # an integer too large for a float
            ok = False
        return ok, float(value) if ok else value
    if annotation is str:
        return isinstance(value, str), value
    if typing.get_origin(annotation) in SEQUENCES and isinstance(value, (list, tuple)):
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis or len(args) <= 1:  # a list of one type
            args = (args[0] if args else Any,) * len(value)
        if len(args) != len(value):  # a fixed-length tuple, e.g. Adam's betas, of another length
            return False, value
        checked = [plain_value(v, a) for v, a in zip(value, args, strict=True)]
        return all(ok for ok, _ in checked), [v for _, v in checked]
    return False, value


def describe(annotation: Any) -> str:
    """What a user may write for an annotation: 'an integer', 'a number or null', ..."""
    if _is_union(annotation):
        parts = [describe(a) for a in typing.get_args(annotation)]
        return " or ".join(dict.fromkeys(p for p in parts if p))
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null",
             Any: "a plain value"}
    if annotation in names:
        return names[annotation]
    if typing.get_origin(annotation) in SEQUENCES:
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        element = describe(args[0]) if args else "a plain value"
        return f"a list of {element.removeprefix('an ').removeprefix('a ')}s" if element else ""
    return ""


def check_value(value: Any, annotation: Any, key: str, origin: str = "") -> Any:
    """The value converted for the constructor, or one line naming the key, the value and what it must be."""
    accepted, converted = plain_value(value, annotation)
    if not accepted:
        expected = describe(annotation) or "set at run time, not in a config"
        raise RlkitError(f"{where_in(key, origin)}={show(value)} must be {expected}")
    return converted


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as dotted keys: {"agent.gamma": 0.99, ...}; an empty node stays a value, tuples become lists."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return flat
