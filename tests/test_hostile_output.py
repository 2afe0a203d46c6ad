"""Output that cannot be forged (issue 20, points 4, 7 and 8): strings from a run folder reach the terminal and
report.md with their control characters escaped, every error line stays within 300 characters, and play's options,
a comma in run= and a supervised run's nonsense values are each one line with exit status 2."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml
from conftest import edit_checkpoint, run_main
from hostile import MAX_ERROR_CHARS, Sentinel, run_hostile

from rlkit import play, report, supervised, train
from rlkit.checkpoint import load_checkpoint
from rlkit.errors import RlkitError, one_line, printable, shorten

ESCAPES = {  # what a hostile run folder hides in its strings -> how rlkit must show it
    "clear screen": ("\x1b[2J", r"\x1b[2J"),
    "OSC 52 clipboard": ("\x1b]52;c;cm0gLXJm\x07", r"\x1b]52;c;cm0gLXJm\x07"),  # no "=": it stays in one key
    "bare CR": ("\r", r"\r"),
    "C1 CSI": ("\x9b2J", r"\x9b2J"),
    "NUL": ("\x00", r"\x00"),
}
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # any control character but newline and tab
REPORT = ("--reps", "20")


@pytest.fixture(scope="module")
def taxi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real small run, copied per case."""
    run_dir = tmp_path_factory.mktemp("made") / "taxi"
    args = ("env=taxi", "total_steps=1000", "eval_every_steps=0", "final_eval_episodes=2", "progress=false")
    assert run_main(train.main, *args, f"hydra.run.dir={run_dir}", capsys=None)[0] == 0
    return run_dir


def copy_of(taxi: Path, tmp_path: Path) -> Path:
    shutil.copytree(taxi, tmp_path / "run")
    return tmp_path / "run"


def set_config(key: str, value: object) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        node = data["config"]
        *parents, leaf = key.split(".")
        for name in parents:
            node = node[name]
        node[leaf] = value

    return edit


def assert_escaped(text: str, shown: str) -> None:
    assert not RAW_CONTROL.search(text), RAW_CONTROL.findall(text)
    assert shown in text, text[-2000:]


def write_overrides(run_dir: Path, lines: list[str]) -> None:
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(lines))


def set_stored_env_name(run_dir: Path, name: str) -> None:
    path = run_dir / ".hydra" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["env"]["name"] = name
    path.write_text(yaml.safe_dump(config))


MEGABYTE = 1_000_000


# As a user meets them: real subprocesses. They run first, while this worker is small: the peak RSS that wait4
# reports for a child is never below its parent's at the spawn.
ISSUE_TRACEBACKS = ["episodes=abc", "seed=-1", "delay=abc", "torch_threads=abc", "follow_timeout=abc"]


@pytest.mark.parametrize("option", ISSUE_TRACEBACKS)
def test_a_bad_play_option_as_a_user_meets_it(taxi, option):
    """Refused before torch loads: well within run_hostile's 10 CPU-seconds."""
    line = run_hostile("rlkit.play", f"run={taxi}", option).refused(option)
    assert line.startswith(f"error: {option} is not valid; "), line


def test_a_comma_in_run_asks_for_quotes_and_a_quoted_one_plays(taxi, tmp_path, capsys):
    comma = tmp_path / "ta,xi"
    shutil.copytree(taxi, comma)
    line = run_hostile("rlkit.play", f"run={comma}", "render=none").refused(f"run=\"'{comma}'\"", "comma")
    assert "quote" in line
    code, out, err = run_main(play.main, f"run='{comma}'", "render=none", "episodes=1", capsys=capsys)
    assert code == 0 and "episode 1: return" in out, err


def test_play_escapes_as_a_user_meets_it(taxi, tmp_path):
    run_dir = copy_of(taxi, tmp_path)
    sentinel = Sentinel(tmp_path / "sentinel")
    osc, shown = ESCAPES["OSC 52 clipboard"]
    edit_checkpoint(run_dir, lambda data: data.update(agent=f"q_learning{osc}", env=f"taxi{ESCAPES['NUL'][0]}"))
    outcome = run_hostile("rlkit.play", f"run={run_dir}", "render=none", "episodes=1")
    assert outcome.returncode == 0, outcome.stderr[-2000:]
    outcome.within_bounds()
    assert_escaped(outcome.stdout + outcome.stderr, f"q_learning{shown} on taxi\\x00")
    sentinel.untouched()


def test_report_escapes_as_a_user_meets_it(taxi, tmp_path):
    sweep = tmp_path / "sweep"
    sentinel = Sentinel(tmp_path / "sentinel")
    for job in ("0", "1"):
        shutil.copytree(taxi, sweep / job)
    raw, shown = ESCAPES["clear screen"]
    write_overrides(sweep / "1", ["env=taxi", f"agent.epsilon=0.1{raw}"])
    outcome = run_hostile("rlkit.report", str(sweep), *REPORT)
    assert outcome.returncode == 0, outcome.stderr[-2000:]
    assert_escaped((sweep / "report.md").read_text(), shown)
    assert not RAW_CONTROL.search(outcome.stdout + outcome.stderr)
    sentinel.untouched()


@pytest.mark.parametrize("args", [
    pytest.param(lambda run_dir: ["rlkit.train", "env=taxi", "seed=[" + ",".join(map(str, range(20_000))) + "]",
        f"hydra.run.dir={run_dir.parent / 'new'}"], id="a 20,000-number list on the command line"),
    pytest.param(lambda run_dir: (edit_checkpoint(run_dir, set_config("seed", "a" * MEGABYTE)),
        ["rlkit.play", f"run={run_dir}"])[1], id="a 1 MB string in a checkpoint"),
])
def test_a_long_value_as_a_user_meets_it(taxi, tmp_path, args):
    module, *rest = args(copy_of(taxi, tmp_path))
    run_hostile(module, *rest).refused("seed")


def test_a_zero_divisor_as_a_user_meets_it(tmp_path):
    run_dir = tmp_path / "sup"
    run_hostile("rlkit.supervised", "data.inputs.divisor=0", f"hydra.run.dir={run_dir}").refused(
        "data.inputs.divisor=0", "positive")
    assert not run_dir.exists()


# Every string a run folder gives play: the checkpoint's agent and env names (printed), its env id and a stored
# config value (refused, so printed in the error line).
PLAY_PLACES: dict[str, Callable[[str], Callable[[dict], None]]] = {
    "agent name": lambda bad: lambda data: data.update(agent=f"q_learning{bad}"),
    "env name": lambda bad: lambda data: data.update(env=f"taxi{bad}"),
    "env id": lambda bad: set_config("env.id", f"Taxi-v3{bad}"),
    "stored config value": lambda bad: set_config("total_steps", f"1000{bad}"),
}


@pytest.mark.parametrize("escape", ESCAPES)
@pytest.mark.parametrize("place", PLAY_PLACES)
def test_play_escapes_every_string_of_the_run(taxi, tmp_path, capsys, place, escape):
    raw, shown = ESCAPES[escape]
    run_dir = copy_of(taxi, tmp_path)
    edit_checkpoint(run_dir, PLAY_PLACES[place](raw))
    code, out, err = run_main(play.main, f"run={run_dir}", "render=none", "episodes=1", capsys=capsys)
    assert code in (0, 2), err
    assert_escaped(out + err, shown)


# Every string a run folder gives report: its recorded override lines (labels, title) and stored config values (the
# panel). Two runs that differ in the edited string, so that it shows in the title and the table.
REPORT_PLACES: dict[str, Callable[[Path, str], None]] = {
    "overrides.yaml line": lambda run_dir, bad: write_overrides(run_dir, ["env=taxi", f"agent.epsilon={bad}0.1"]),
    "overrides.yaml key": lambda run_dir, bad: write_overrides(run_dir, ["env=taxi", f"seed{bad}=1"]),
    "stored config value": lambda run_dir, bad: set_stored_env_name(run_dir, f"taxi{bad}"),
}


@pytest.mark.parametrize("escape", ESCAPES)
@pytest.mark.parametrize("place", REPORT_PLACES)
def test_report_escapes_every_string_of_the_runs(taxi, tmp_path, capsys, place, escape):
    raw, shown = ESCAPES[escape]
    sweep = tmp_path / "sweep"
    shutil.copytree(taxi, sweep / "0")
    shutil.copytree(taxi, sweep / "1")
    REPORT_PLACES[place](sweep / "1", raw)
    code, out, err = run_main(lambda: report.main([str(sweep), *REPORT]), capsys=capsys)
    assert code == 0, err
    markdown = (sweep / "report.md").read_text()
    assert_escaped(markdown, shown)
    assert not RAW_CONTROL.search(out + err)  # the table printed: groups and panels, escaped in it too


LONG_VALUES = {  # the issue's sizes are slow to write and read back in-process; a tenth of them is not
    "100 KB string": lambda: "a" * (MEGABYTE // 10), "100,000 numbers": lambda: list(range(100_000)),
    "1 MB string": lambda: "a" * MEGABYTE, "1,000,000 numbers": lambda: list(range(1_000_000)),
}
SLOW_VALUES = ("1 MB string", "1,000,000 numbers")


def as_override(value: object) -> str:
    return value if isinstance(value, str) else "[" + ",".join(map(str, value)) + "]"


def _cli(run_dir: Path, value: object) -> tuple[Callable[[], None], list[str]]:
    return train.main, ["env=taxi", f"total_steps={as_override(value)}", f"hydra.run.dir={run_dir.parent / 'new'}"]


def _checkpoint(run_dir: Path, value: object) -> tuple[Callable[[], None], list[str]]:
    data = load_checkpoint(run_dir)
    set_config("total_steps", value)(data)
    try:
        edit_checkpoint(run_dir, set_config("total_steps", value))
    except RlkitError:  # too big for rlkit to write (rlkit.checkpoint caps the values): saved as a stranger would
        torch.save({**data, "sha256": "0" * 64}, run_dir / "checkpoint.pt")
    return play.main, [f"run={run_dir}", "render=none"]


def _recorded(run_dir: Path, value: object) -> tuple[Callable[[], None], list[str]]:
    (run_dir / ".hydra" / "overrides.yaml").write_text(f"- env=taxi\n- total_steps={as_override(value)}\n")
    return train.main, [f"resume={run_dir}"]


SOURCES = {"command line": _cli, "checkpoint config": _checkpoint, "overrides.yaml": _recorded}
CAPPED_FIRST = {("checkpoint config", "1,000,000 numbers"): "more than 200,000 values",
    ("overrides.yaml", "1,000,000 numbers"): "larger than 4 MiB"}


@pytest.mark.parametrize("value", [pytest.param(v, marks=pytest.mark.slow) if v in SLOW_VALUES else v
    for v in LONG_VALUES])
@pytest.mark.parametrize("source", SOURCES)
def test_a_long_value_gives_a_short_line_naming_its_key(taxi, tmp_path, capsys, source, value):
    main, args = SOURCES[source](copy_of(taxi, tmp_path), LONG_VALUES[value]())
    code, _, err = run_main(main, *args, capsys=capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    # Past rlkit's size caps the file itself is refused before any key is read: the line names the cap instead
    named = CAPPED_FIRST.get((source, value), "total_steps")
    assert len(lines[0]) <= MAX_ERROR_CHARS and named in lines[0], lines[0][:400]


MESSAGES = {  # a message, built in the test so that no worker holds it -> how its line starts
    "50 MB": (lambda: "x" * 50_000_000, "x" * 20), "a million lines": (lambda: "\n".join(["line"] * 1_000_000),
        "line; line; line"),
    "a formatted 1,000,000-number list": (lambda: f"bad value {list(range(1_000_000))}", "bad value [0, 1, 2, 3"),
    "100,000 escapes": (lambda: "\x1b[2J" * 100_000, printable("\x1b[2J" * 5)),
}


@pytest.mark.parametrize("kind", MESSAGES)
def test_one_line_bounds_any_message_keeping_start_and_end(kind):
    make, start = MESSAGES[kind]
    line = "error: " + one_line(RlkitError(make() + " END"))
    assert len(line) <= MAX_ERROR_CHARS and line.startswith("error: " + start) and line.endswith(" END"), line
    assert " ... " in line and not RAW_CONTROL.search(line), line


SHORTENED = {  # a value, made in the test -> how a message shows it
    "list": (lambda: list(range(3_000_000)), "[0, 1, 2, ... (2,999,997 more)]"),
    "tuple": (lambda: tuple(range(5)), "[0, 1, 2, ... (2 more)]"), "short list": (lambda: [1, 2], "[1, 2]"),
    "mapping": (lambda: {f"k{i}": i for i in range(300_000)}, "{k0: 0, k1: 1, k2: 2, ... (299,997 more)}"),
    "nested": (lambda: [[list(range(9))] * 4], "[[[...], [...], [...], ... (1 more)]]"),
    "string": (lambda: "a" * MEGABYTE, "a" * 50 + "... (999,950 more characters)"),
    "short string": (lambda: "short", "short"), "huge int": (lambda: 10**5000, "<a int too long to show>"),
}


@pytest.mark.parametrize("kind", SHORTENED)
def test_shorten_shows_the_first_items_and_a_count(kind):
    make, shown = SHORTENED[kind]
    assert shorten(make()) == shown


# play's own options, each with bad values: one line naming the option (render= and overlay= once the run is read).
PLAY_OPTIONS = {
    "episodes": ["abc", "0", "-1", "1.5"], "seed": ["-1", "abc"], "delay": ["abc", "-1", "nan"],
    "torch_threads": ["abc", "0", "-2"], "follow_timeout": ["abc", "0", "-5", "inf"], "render": ["bogus"],
    "overlay": ["bogus"], "follow": ["abc"], "video": ["3"],
}


@pytest.mark.parametrize(("option", "value"), [(o, v) for o, values in PLAY_OPTIONS.items() for v in values])
def test_a_bad_play_option_is_one_line_naming_it(taxi, capsys, option, value):
    code, out, err = run_main(play.main, f"run={taxi}", f"{option}={value}", capsys=capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "episode" not in out, err
    assert err.startswith(f"error: {option}={value} is not valid; "), err


@pytest.mark.parametrize("value", ["[1,2]", "123"])
def test_a_run_that_is_not_a_path_is_one_line(taxi, capsys, value):
    code, _, err = run_main(play.main, f"run={value}", capsys=capsys)
    assert code == 2 and err.startswith("error: run=") and "is not a path; quote it" in err, err


# Values a supervised run would take and then train nothing with (or a NaN model, offered as a body).
SUPERVISED_NONSENSE = {
    "data.inputs.divisor": ["0", "-1", "nan", "inf"], "optim.lr": ["0", "-0.5", "nan", "1e300"],
    "epochs": ["0", "-1", "abc"], "batch_size": ["0", "-1"], "eval_batch_size": ["0", "1.5"],
    "label_smoothing": ["1", "abc"],
    "data.cpu_threads": ["-1"], "seed": ["abc"], "progress": ["abc"],
}


@pytest.mark.parametrize(("key", "value"), [
    *((k, v) for k, values in SUPERVISED_NONSENSE.items() for v in values),
    ("optim.eps", "0"),  # RMSprop's: 0/0 where a gradient is zero
])
def test_a_supervised_value_that_cannot_train_is_one_line_before_any_folder(tmp_path, capsys, key, value):
    run_dir = tmp_path / "sup"
    extra = ["optim=rmsprop"] if key == "optim.eps" else []
    code, _, err = run_main(supervised.main, "net=perceptron", "progress=false", *extra, f"{key}={value}",
        f"hydra.run.dir={run_dir}", capsys=capsys)  # the last of two values for a key wins
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith(f"error: {key}"), err
    assert not run_dir.exists()


def test_a_loss_that_turns_nan_saves_no_model(tmp_path, capsys):
    """A rate float32 holds that still blows up: the run stops in its first epoch, and no body is offered."""
    run_dir = tmp_path / "sup"
    code, out, err = run_main(supervised.main, "optim=sgd", "optim.lr=1e38", "net=mlp", "epochs=3", "progress=false",
        f"hydra.run.dir={run_dir}", capsys=capsys)
    assert code == 2 and err == "error: the training loss became nan in epoch 1; no model is saved: lower optim.lr\n"
    assert not (run_dir / "checkpoint.pt").exists() and "agent.body_init" not in out
