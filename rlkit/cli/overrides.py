"""Command-line overrides as data: parsed by Hydra's grammar, checked against the keys a config really has and
composed with Hydra's compose API, so a bad key is one line naming the closest valid keys."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rlkit.errors import FIRST, RlkitError, one_line, shorten
from rlkit.plain import refuse_code

# gymnasium.make's keyword arguments are open-ended: the one place where `+key=` may add a key.
OPEN_PREFIXES = ("env.kwargs.",)
# Keys renamed since run folders were first written, old -> today's: a recorded override and a stored config are
# read under today's name, and a user typing the old one is told the new one (one name for one thing).
RENAMED_KEYS = {"agent.discount": "agent.gamma"}
_PRIORITY_LEAVES = ("alpha", "beta_start", "beta_steps", "eps")
# Settings that moved into a part's node: prioritized replay's settings are the prioritized sampler's now.
MOVED_KEYS = {f"agent.priority_{leaf}": f"agent.sampler.{leaf}" for leaf in _PRIORITY_LEAVES}
# Flags that became parts named in the config: old key -> (how a command line picks the part, {flag: part}).
FLAG_PARTS: dict[str, tuple[str, dict[bool, str]]] = {
    "agent.dueling": ("net.head.type", {True: "dueling", False: "linear"}),
    "agent.prioritized": ("agent/sampler", {True: "prioritized", False: "uniform"}),
    "agent.dedup_frames": ("replay", {True: "frames", False: "transitions"}),
    "env.dedup_frames": ("replay", {True: "frames", False: "transitions"}),
}
FLAG_VALUES = {"true": True, "false": False}
# Keys only one option of a group has, typed while another option is chosen: that option is named.
OPTION_KEYS = {f"agent.sampler.{leaf}": "agent/sampler=prioritized" for leaf in _PRIORITY_LEAVES}
# Hydra's parser takes time quadratic in a list's items (4,000: 1 s, 20,000: half a minute); longer lines are
# refused before it sees them.
MAX_OVERRIDE_CHARS, MAX_OVERRIDE_ITEMS = 100_000, 2_000


def current_name(override: str) -> str:
    """An override line in today's key names, its +/~ prefix and value kept: agent.dueling=true is
    net.head.type=dueling."""
    key, sep, value = override.partition("=")
    bare = key.lstrip("+~")
    prefix = key[: len(key) - len(bare)]
    if bare in FLAG_PARTS and value.strip().lower() in FLAG_VALUES:
        choice, parts = FLAG_PARTS[bare]
        return f"{prefix}{choice}={parts[FLAG_VALUES[value.strip().lower()]]}"
    return prefix + RENAMED_KEYS.get(bare, MOVED_KEYS.get(bare, bare)) + sep + value


def old_key(key: str, value: str | None = None) -> RlkitError | None:
    """One line telling a user who typed a key from before the parts had names what to type today, or None."""
    if key in FLAG_PARTS:
        choice, parts = FLAG_PARTS[key]
        flag = FLAG_VALUES.get((value or "true").strip().lower(), True)
        return RlkitError(f"{key} is now {choice}: use {choice}={parts[flag]}")
    shown = value if value is not None else "<value>"
    if key in MOVED_KEYS:
        return RlkitError(f"{key} is now {MOVED_KEYS[key]}: use {OPTION_KEYS[MOVED_KEYS[key]]} "
            f"{MOVED_KEYS[key]}={shown}")
    if key in OPTION_KEYS:
        return RlkitError(f"{key} is not a setting of the sampler chosen; {OPTION_KEYS[key]} takes it: "
            f"{OPTION_KEYS[key]} {key}={shown}")
    return None


def too_long(line: str) -> str | None:
    """Why an override line is too long to parse, or None."""
    if len(line) <= MAX_OVERRIDE_CHARS and line.count(",") < MAX_OVERRIDE_ITEMS:
        return None
    return (f"an override of {len(line):,} characters and {line.count(',') + 1:,} items is longer than rlkit reads "
        f"({MAX_OVERRIDE_CHARS:,} characters and {MAX_OVERRIDE_ITEMS:,} items at most)")


def parse_overrides(lines: Sequence[str]) -> list[Override]:
    for line in lines:
        if (problem := too_long(line)) is not None:
            raise RlkitError(f"{shorten(line, 160)}: {problem}")
    try:
        return OverridesParser.create().parse_overrides(list(lines))
    except HydraException as exc:
        raise RlkitError(one_line(exc, lines=FIRST)) from None


def compose(conf: Path, config_name: str, lines: Sequence[str]) -> DictConfig:
    """The config `config_name` with these overrides, Hydra's node included (group choices, run dir)."""
    try:
        with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
            return hydra_compose(config_name, overrides=list(lines), return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as exc:
        raise RlkitError(one_line(exc, lines=FIRST)) from None


def config_keys(node: Any, prefix: str = "") -> set[str]:
    """Every dotted key of a config, nodes included: {'env', 'env.kwargs', 'env.kwargs.map_name', ...}."""
    keys: set[str] = set()
    for key in node.keys() if isinstance(node, DictConfig) else ():
        keys |= {f"{prefix}{key}", *config_keys(node._get_node(key), f"{prefix}{key}.")}
    return keys


def _initials(name: str) -> str:
    return "".join(part[0] for part in name.split("_") if part)


def closest_keys(key: str, keys: Iterable[str], n: int = 3) -> list[str]:
    """Valid keys a mistyped one most likely meant: the same name in another group (agent.lr -> optim.lr) or an
    abbreviation (agent.lr -> agent.learning_rate) first, then by spelling; only settings and top-level nodes count."""
    keys = set(keys)
    nodes = {k.rsplit(".", 1)[0] for k in keys if "." in k}
    candidates = sorted(
        k for k in keys
        if (k not in nodes or "." not in key) and not k.endswith(".type")
        and k.startswith("hydra") == key.startswith("hydra")
    )
    leaf = key.rsplit(".", 1)[-1]
    same_leaf = [k for k in candidates if k.rsplit(".", 1)[-1] == leaf]
    abbreviated = [k for k in candidates if len(leaf) > 1 and _initials(k.rsplit(".", 1)[-1]) == leaf]
    spelled = difflib.get_close_matches(key, candidates, n=n, cutoff=0.6)
    leaves = {k.rsplit(".", 1)[-1]: k for k in candidates}
    close_leaf = [leaves[m] for m in difflib.get_close_matches(leaf, list(leaves), n=n, cutoff=0.75)]
    return list(dict.fromkeys([*same_leaf, *abbreviated, *spelled, *close_leaf]))[:n]


def unknown_key(key: str, keys: Iterable[str], *, entry: str, value: str | None = None) -> RlkitError:
    keys = set(keys)
    if (moved := old_key(key, value)) is not None:
        return moved
    if RENAMED_KEYS.get(key) in keys:
        return RlkitError(f"unknown key {key}; it is called {RENAMED_KEYS[key]} now: {RENAMED_KEYS[key]}=<value>")
    close = closest_keys(key, keys)
    if not close:
        return RlkitError(f"unknown key {key}; python -m {entry} --help lists every key")
    options = close[0] if len(close) == 1 else ", ".join(close[:-1]) + " or " + close[-1]
    return RlkitError(f"unknown key {key}; did you mean {options}?")


def first_values(overrides: Sequence[Override]) -> list[str]:
    """One job's overrides out of a sweep: each choice or range at its first value; intervals left out."""
    lines = []
    for override in overrides:
        if not override.is_sweep_override():
            lines.append(override.input_line)
        elif override.is_discrete_sweep():
            lines.append(f"{override.get_key_element()}={next(iter(override.sweep_string_iterator()))}")
    return lines


def checked_data_overrides(lines: Sequence[str], *, origin: str) -> list[Override]:
    """Overrides a run folder recorded, under today's key names, accepted only as plain settings of rlkit keys:
    hydra.*, `+`/`~` (outside env.kwargs), packages, sweeps, `_target_`-style keys and `${...}` are refused."""
    parsed = []
    for line in map(current_name, lines):
        if (size := too_long(line)) is not None:
            raise RlkitError(f"{shorten(line, 160)} in {origin}: {size}")
        try:
            (override,) = parse_overrides([line])
        except (RlkitError, ValueError):
            raise RlkitError(f"{shorten(line, 160)} in {origin} is not an override rlkit writes") from None
        key = override.key_or_group
        adds_or_deletes = override.type != OverrideType.CHANGE and not key.startswith(OPEN_PREFIXES)
        problem = (
            "hydra settings are never replayed from a run folder" if override.is_hydra_override()
            else "+ and ~ are never replayed from a run folder" if adds_or_deletes
            else "packages (@) are never replayed" if override.package is not None
            else "sweeps are never replayed" if override.is_sweep_override()
            else "interpolations are never resolved from a run folder" if "${" in line
            else "rlkit never instantiates a _target_"
            if any(p.startswith("_") and p.endswith("_") for p in key.split("."))
            else None
        )
        if problem is not None:
            raise RlkitError(f"{shorten(line, 160)} in {origin}: {problem}")
        try:
            refuse_code(override.value(), key, origin)
        except RlkitError as exc:
            raise RlkitError(f"{shorten(line, 160)} in {origin}: {exc}") from None
        parsed.append(override)
    return parsed


def _is_rlkit_key(override: Override, groups: Sequence[str]) -> bool:
    return not override.is_hydra_override() and override.key_or_group not in groups


def check_keys(overrides: Sequence[Override], keys: set[str], *, groups: Sequence[str], entry: str) -> None:
    """Refuse keys the config lacks, `+` additions (outside env.kwargs) and `~` deletions of rlkit keys; `+key=` is
    never suggested: rlkit reads only the keys its config defines, so an added one would do nothing."""
    for override in overrides:
        key = override.key_or_group
        if key.startswith(OPEN_PREFIXES):
            if override.type == OverrideType.CHANGE and key not in keys:  # gymnasium.make's keywords: added, not set
                raise RlkitError(f"{key} is not in this env's kwargs; add a gymnasium.make keyword with "
                    f"+{override.input_line}")
            continue
        if override.is_hydra_override() and override.type == OverrideType.CHANGE and "/" not in key and key not in keys:
            raise unknown_key(key, keys, entry=entry)
        if not _is_rlkit_key(override, groups):
            continue
        if override.type == OverrideType.DEL:
            raise RlkitError(f"{override.input_line}: rlkit keys cannot be deleted; set {key}=<value> instead")
        if override.type in (OverrideType.ADD, OverrideType.FORCE_ADD):
            if key in keys:
                raise RlkitError(f"{override.input_line}: {key} exists; set it without the +: "
                    f"{key}={override.get_value_element_as_str()}")
            raise unknown_key(key, keys, entry=entry)
        if key not in keys:
            raise unknown_key(key, keys, entry=entry, value=override.get_value_element_as_str())


def compose_checked(conf: Path, config_name: str, overrides: Sequence[Override], *, groups: Sequence[str],
        entry: str) -> DictConfig:
    """Compose one job's config, refusing unknown keys by name before Hydra's own multi-line report can; the keys of
    the chosen groups are composed apart only to name a bad key."""
    adds = any(
        o.type != OverrideType.CHANGE and _is_rlkit_key(o, groups) and not o.key_or_group.startswith(OPEN_PREFIXES)
        for o in overrides
    )
    try:
        cfg = None if adds else compose(conf, config_name, first_values(overrides))
    except RlkitError:
        cfg = None
    # No cfg: a bad key, an addition or a deletion; say which, against the keys the chosen groups really have.
    choices = [o.input_line for o in overrides if o.key_or_group in groups or "/" in o.key_or_group]
    keys = config_keys(cfg if cfg is not None else compose(conf, config_name, choices))
    check_keys(overrides, keys, groups=groups, entry=entry)  # with a cfg: env.kwargs keys a CHANGE cannot add
    return cfg if cfg is not None else compose(conf, config_name, first_values(overrides))


def resolved_run_dir(cfg: DictConfig, key: str = "hydra.run.dir") -> Path:
    """hydra.run.dir (or hydra.sweep.dir) as Hydra will resolve it (${now:...}, ${hydra:runtime.choices...})."""
    hydra_config = HydraConfig.instance()
    previous = hydra_config.cfg
    hydra_config.set_config(cfg)
    try:
        return Path(str(OmegaConf.select(cfg, key)))
    finally:
        hydra_config.cfg = previous
