"""One config node checked against the factory its `type:` names: plain values only, each of the type the factory's
signature gives, the same check for conf/ and for data read back from a run folder."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

from rlkit.errors import RlkitError
from rlkit.plain import check_value, refuse_code, show, where_in


def _annotations(factory: Callable[..., Any]) -> dict[str, Any]:
    """Parameter -> annotation; a parameter without one is typed by its default (or takes any plain value)."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        hints = typing.get_type_hints(target)
    except (NameError, TypeError):
        hints = {}
    untyped = (inspect.Parameter.empty, None)
    return {
        name: hints[name] if name in hints else Any if parameter.default in untyped else type(parameter.default)
        for name, parameter in inspect.signature(factory).parameters.items()
    }


def checked(
    node: Any, choices: Mapping[str, Callable[..., Any]], *, key: str, origin: str = "",
    run_time: frozenset[str] = frozenset(), choose: str | None = None,
) -> tuple[str, Callable[..., Any], dict[str, Any]]:
    """(name, factory, keyword arguments) for a node that names a registry entry and sets plain values.
    `choose` is how a command line picks another entry (a Hydra group such as agent/sampler), `key=` by default."""
    refuse_code(node, key, origin)
    if not isinstance(node, Mapping):
        raise RlkitError(f"{where_in(key, origin)} must be a mapping with a type: key, got {show(node)}")
    name = node.get("type")
    if not isinstance(name, str) or name not in choices:
        raise RlkitError(f"{where_in(key + '.type', origin)}={show(name)} is not known; choose one of: "
            f"{', '.join(choices)}")
    factory = choices[name]
    annotations = _annotations(factory)
    foreign = sorted(k for k in node if k != "type" and (k not in annotations or k in run_time or k == "self"))
    if foreign:
        takers = [
            other for other, f in choices.items() if other != name and set(foreign) <= set(_annotations(f)) - run_time
        ]
        hint = f"; {choose or key}={takers[0]} takes {'it' if len(foreign) == 1 else 'them'}" if takers else ""
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        keys = ", ".join(f"{key}.{k}" for k in foreign[:3]) + more
        raise RlkitError(f"{where_in(keys, origin)} {'is' if len(foreign) == 1 else 'are'} not a setting of "
            f"{key}={name}{hint}")
    kwargs = {k: check_value(v, annotations[k], f"{key}.{k}", origin) for k, v in node.items() if k != "type"}
    return name, factory, kwargs
