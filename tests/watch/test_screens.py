"""Where play shows frames: Taxi's board in a terminal or a pipe, a window, and exactly the video file asked for."""

from __future__ import annotations

import io
import os
import re

import numpy as np
import pytest
from conftest import compose_app, lake_table, run_cli, tabular_run

from rlkit.errors import RlkitError
from rlkit.runs.playback import play
from rlkit.watch.screens import LIVE_BOARD_DELAY_S, TerminalBoard, Window, check_video_path

BOARD_A = "+---+\n|a  |\n+---+\n"
BOARD_B = "+---+\n| b |\n+---+\n  (East)\n"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_pipe_gets_every_board_plainly_and_without_delay() -> None:
    out = io.StringIO()
    board = TerminalBoard(out)
    assert board.delay == 0.0
    board.show(BOARD_A)
    board.show(BOARD_B)
    assert out.getvalue() == BOARD_A + BOARD_B


def test_a_terminal_redraws_the_board_in_place_with_a_short_default_delay() -> None:
    out = Terminal()
    assert TerminalBoard(out).delay == LIVE_BOARD_DELAY_S
    board = TerminalBoard(out, delay=0)
    board.show(BOARD_A)
    board.show(BOARD_B)  # back up over BOARD_A's 3 lines, clear, draw
    board.end_episode()
    board.show(BOARD_A)  # a new episode starts below the last board (and the summary line printed after it)
    assert out.getvalue() == BOARD_A + "\x1b[3F\x1b[J" + BOARD_B + BOARD_A


def test_a_negative_delay_is_refused() -> None:
    with pytest.raises(RlkitError, match="delay=-1 must be >= 0"):
        TerminalBoard(io.StringIO(), delay=-1)


def test_the_window_shows_each_frame_as_given(monkeypatch) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    import pygame

    frame = np.zeros((40, 60, 3), dtype=np.uint8)
    frame[10, 20] = (255, 170, 0)
    window = Window(fps=1000, caption="test")
    try:
        window.show(frame)
        surface = pygame.display.get_surface()
        assert surface.get_size() == (60, 40) and tuple(surface.get_at((20, 10)))[:3] == (255, 170, 0)
    finally:
        window.close()


@pytest.mark.parametrize(
    ("name", "message"),
    [("clip.avi", "must end in .mp4 or .gif"), ("a_file/clip.mp4", "cannot be created: .* is a file"), ("a_dir.mp4",
        "is a folder")],
)
def test_video_paths_that_cannot_be_written_are_refused_before_playing(tmp_path, name: str, message: str) -> None:
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "a_dir.mp4").mkdir()
    with pytest.raises(RlkitError, match=message):
        check_video_path(tmp_path / name)


@pytest.fixture(scope="module")
def taxi_table_run(tmp_path_factory):
    table = np.random.default_rng(7).normal(size=(500, 6)).round(2)
    return tabular_run(tmp_path_factory.mktemp("runs") / "taxi", "env=taxi", table=table), table


def parse_taxi_board(board: str) -> tuple[int, int, int, int]:
    """(taxi row, taxi col, passenger index (4: in the taxi), destination index) from gymnasium's coloured board."""
    locs = [(0, 0), (0, 4), (4, 0), (4, 3)]
    taxi = passenger = destination = None
    for row, line in enumerate(board.splitlines()[1:6]):
        codes: set[str] = set()
        column = 0
        for token in re.findall(r"\x1b\[[0-9;]*m|.", line):
            if token.startswith("\x1b"):
                found = set(token[2:-1].split(";"))
                codes = set() if "0" in found else codes | found
                continue
            if column % 2 == 1:
                cell = (row, column // 2)
                if "43" in codes or "42" in codes:
                    taxi = cell
                    passenger = 4 if "42" in codes else passenger
                if "34" in codes:
                    passenger = locs.index(cell)
                if "35" in codes:
                    destination = locs.index(cell)
            column += 1
    assert taxi is not None and passenger is not None and destination is not None, board
    return taxi[0], taxi[1], passenger, destination


def test_taxis_text_overlay_prints_the_tables_values_for_the_state_shown(taxi_table_run, capsys) -> None:
    import gymnasium as gym

    run_dir, table = taxi_table_run
    play(compose_app("play", f"run={run_dir}", "episodes=2", "overlay=q"))
    out = capsys.readouterr().out
    assert "\x1b[J" not in out  # captured output is not a terminal: boards are printed, never redrawn
    encode = gym.make("Taxi-v4" if "Taxi-v4" in gym.envs.registry else "Taxi-v3").unwrapped.encode
    boards = re.findall(r"(\+-{9}\+\n(?:.*\n){5}\+-{9}\+\n(?:  \(\w+\)\n)?)(Q: .*)\n", out)
    assert len(boards) >= 10
    for board, line in boards:
        state = encode(*parse_taxi_board(board))
        values = [float(v) for v in re.findall(r"-?\d+\.\d\d", line)]
        assert values == table[state].tolist(), (board, line)
        assert re.search(r"\[\w+ (-?\d+\.\d\d)\]", line).group(1) == f"{table[state].max():.2f}"  # greedy in brackets


def test_play_on_a_terminal_redraws_taxis_board_in_place(taxi_table_run, monkeypatch) -> None:
    run_dir, _ = taxi_table_run
    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    play(compose_app("play", f"run={run_dir}", "episodes=1", "delay=0"))
    out = terminal.getvalue()
    assert out.count("\x1b[J") == out.count("+---------+\n|") - 1  # every board after the first replaces the one before
    assert "episode 1: return" in out


def count_frames(path) -> int:
    from moviepy.video.io.VideoFileClip import VideoFileClip

    with VideoFileClip(str(path)) as clip:
        return sum(1 for _ in clip.iter_frames())


def test_play_video_writes_exactly_the_named_file_with_every_episode(tmp_path, capsys) -> None:
    run_dir = tabular_run(tmp_path / "lake", "env=frozenlake", "env.kwargs.is_slippery=false", table=lake_table())
    proc = run_cli("rlkit.play", f"run={run_dir}", "episodes=2", f"video={tmp_path / 'lake.mp4'}")  # as a user runs it
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count(" in 6 steps") == 2 and proc.stdout.endswith(f"video: {tmp_path / 'lake.mp4'}\n")
    assert count_frames(tmp_path / "lake.mp4") == 14  # both episodes one after another: reset frame + 6 steps each
    play(compose_app("play", f"run={run_dir}", "episodes=2", f"video={tmp_path / 'lake.gif'}"))
    assert capsys.readouterr().out.endswith(f"video: {tmp_path / 'lake.gif'}\n")
    assert count_frames(tmp_path / "lake.gif") == 14
    assert sorted(os.listdir(tmp_path)) == ["lake", "lake.gif", "lake.mp4"]


def test_play_records_the_runs_own_video_file_when_no_display_exists(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    run_dir = tabular_run(tmp_path / "lake", "env=frozenlake", "env.kwargs.is_slippery=false",
        "env.render_mode=rgb_array",
                          table=lake_table())
    play(compose_app("play", f"run={run_dir}", "episodes=1"))
    assert capsys.readouterr().out.endswith(f"video: {run_dir / 'videos' / 'play.mp4'}\n")
    assert os.listdir(run_dir / "videos") == ["play.mp4"] and count_frames(run_dir / "videos" / "play.mp4") == 7


def test_a_video_path_that_cannot_be_written_is_one_line_and_status_2(taxi_table_run, tmp_path) -> None:
    run_dir, _ = taxi_table_run
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    proc = run_cli("rlkit.play", f"run={run_dir}", f"video={tmp_path / 'notes.txt' / 'taxi.mp4'}")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr == (f"error: video={tmp_path / 'notes.txt' / 'taxi.mp4'} "
        f"cannot be created: {tmp_path / 'notes.txt'} is a file\n")
