"""Where play shows its frames: a text board in the terminal, a window, or one video file for all episodes."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from rlkit.errors import RlkitError
from rlkit.run_folder import check_writable

LIVE_BOARD_DELAY_S = 0.15  # a terminal redraws Taxi's board in place at about 7 boards per second


def display_available() -> bool:
    """False on Linux without an X or Wayland display; other platforms always have one."""
    return not sys.platform.startswith("linux") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def quiet_offscreen_rendering() -> None:
    """Before an env draws rgb_array frames with pygame: no pygame banner on stdout, and without a display
    SDL's dummy drivers (else SDL prints `error: XDG_RUNTIME_DIR is invalid` on every run)."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    if not display_available():
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


class Screen:
    """Where play's frames go: show() each rendered frame, end_episode() between episodes, close() at the end."""

    def show(self, frame: Any) -> None:
        raise NotImplementedError

    def end_episode(self) -> None:
        pass

    def close(self) -> None:
        pass


class TerminalBoard(Screen):
    """Text boards on stdout: redrawn in place on a terminal, printed one after another into a pipe or file.
    delay=None pauses briefly per board on a terminal, and not at all into a pipe (`play ... | less`) or a log."""

    def __init__(self, stream: TextIO = sys.stdout, *, delay: float | None = None) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self.delay = (LIVE_BOARD_DELAY_S if self.live else 0.0) if delay is None else float(delay)
        if self.delay < 0:
            raise RlkitError(f"delay={delay} must be >= 0 seconds (or null for the default)")
        self._lines_shown = 0

    def show(self, frame: Any) -> None:
        text = str(frame).removesuffix("\n") + "\n"
        if self.live and self._lines_shown:
            self.stream.write(f"\x1b[{self._lines_shown}F\x1b[J")  # up to the board's first line, clear below
        self.stream.write(text)
        self.stream.flush()
        self._lines_shown = text.count("\n")
        if self.delay:
            time.sleep(self.delay)

    def end_episode(self) -> None:
        self._lines_shown = 0  # keep the last board; the episode's summary line follows it


class Window(Screen):
    """RGB frames in a pygame window (render=human), at the env's speed; closing the window stops play."""

    def __init__(self, *, fps: float, caption: str) -> None:
        import pygame

        self._pygame = pygame
        self.fps, self.caption = float(fps), caption
        self._surface: Any = None
        self._clock = pygame.time.Clock()

    def show(self, frame: Any) -> None:
        pygame = self._pygame
        size = (frame.shape[1], frame.shape[0])
        if self._surface is None or self._surface.get_size() != size:
            pygame.display.init()
            pygame.display.set_caption(self.caption)
            self._surface = pygame.display.set_mode(size)
        pygame.surfarray.blit_array(self._surface, np.ascontiguousarray(np.swapaxes(frame, 0, 1)))
        if any(event.type == pygame.QUIT for event in pygame.event.get()):
            raise KeyboardInterrupt  # play stops as on Ctrl-C: the episodes so far are reported
        pygame.display.flip()
        self._clock.tick(self.fps)

    def close(self) -> None:
        if self._surface is not None:
            self._pygame.display.quit()
            self._surface = None


def check_video_path(video: str | Path) -> Path:
    """The file play will write, checked before anything plays: a known suffix and a folder it can write to."""
    path = Path(video).expanduser()
    if path.suffix.lower() not in (".mp4", ".gif"):
        raise RlkitError(f"video={video} must end in .mp4 or .gif")
    if path.is_dir():
        raise RlkitError(f"video={video} is a folder; name a file, e.g. video={path / 'play.mp4'}")
    check_writable(path.parent, label=f"video={video}")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        from moviepy.video.io.ffmpeg_writer import FFMPEG_VideoWriter  # noqa: F401
    except ImportError:
        raise RlkitError('video= needs moviepy: pip install "rlkit[video]"') from None
    return path


class VideoFile(Screen):
    """All episodes, one after another, in exactly the file asked for (.mp4, or .gif converted from it); frames stream
    to ffmpeg, so a long game never sits in memory, and the file is written beside its name, then renamed."""

    def __init__(self, path: Path, *, fps: float) -> None:
        self.path, self.fps = path, float(fps)
        self._partial = path.parent / f".{path.stem}.{os.getpid()}.partial.mp4"
        self._writer: Any = None
        self.frames = 0

    def show(self, frame: Any) -> None:
        from moviepy.video.io.ffmpeg_writer import FFMPEG_VideoWriter

        frame = np.asarray(frame, dtype=np.uint8)
        pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
        if pad_h or pad_w:  # by one edge pixel: H.264 players need even widths and heights
            frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        if self._writer is None:  # the first frame sets the size
            self._writer = FFMPEG_VideoWriter(str(self._partial), (frame.shape[1], frame.shape[0]), self.fps,
                codec="libx264")
        self._writer.write_frame(frame)
        self.frames += 1

    def close(self) -> None:
        """Finish the file; called on errors and Ctrl-C too, so the episodes played so far are kept."""
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        try:
            if self.path.suffix.lower() == ".gif":
                from moviepy.video.io.VideoFileClip import VideoFileClip

                with VideoFileClip(str(self._partial)) as clip:
                    clip.write_gif(str(self.path), fps=self.fps, logger=None)
            else:
                os.replace(self._partial, self.path)
        finally:
            self._partial.unlink(missing_ok=True)
