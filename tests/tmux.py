"""Drive the installed ``cryptotui`` in a real terminal (tmux): start, send keys, read the screen."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path


def cryptotui_command() -> str | None:
    """The installed console script next to this Python, else on PATH."""
    candidate = Path(sys.executable).parent / "cryptotui"
    if candidate.exists():
        return str(candidate)
    return shutil.which("cryptotui")


class Tmux:
    """One detached tmux session running one command; the exit status is written to a file."""

    def __init__(
        self,
        args: list[str],
        *,
        env: dict[str, str],
        width: int = 120,
        height: int = 40,
        workdir: Path,
    ) -> None:
        self.name = f"cryptotui-test-{uuid.uuid4().hex[:8]}"
        # A server of its own: a test never meets (or is killed with) anyone else's tmux sessions.
        self.tmux = ["tmux", "-L", self.name]
        self.status_file = workdir / f"{self.name}.exit"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        cmd = f"env {exports} {shlex.join(args)}; echo $? > {shlex.quote(str(self.status_file))}; sleep 600"
        subprocess.run(
            [
                *self.tmux,
                "new-session",
                "-d",
                "-s",
                self.name,
                "-x",
                str(width),
                "-y",
                str(height),
                cmd,
            ],
            check=True,
            env={**os.environ, "TERM": "xterm-256color"},
        )

    def screen(self) -> str:
        r = subprocess.run(
            [*self.tmux, "capture-pane", "-p", "-t", self.name],
            capture_output=True,
            text=True,
            check=False,
        )
        return r.stdout

    def keys(self, *keys: str, pause: float = 0.3) -> None:
        for k in keys:
            subprocess.run([*self.tmux, "send-keys", "-t", self.name, k], check=True)
            time.sleep(pause)

    def burst(self, *keys: str) -> None:
        """Send ``keys`` in one tmux call: they arrive together, as from a fast typist or a paste."""
        subprocess.run([*self.tmux, "send-keys", "-t", self.name, *keys], check=True)

    def resize(self, width: int, height: int) -> None:
        subprocess.run(
            [*self.tmux, "resize-window", "-t", self.name, "-x", str(width), "-y", str(height)],
            check=True,
        )

    def wait_for(
        self, predicate: Callable[[str], bool], timeout: float = 30.0, what: str = ""
    ) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if predicate(screen):
                return screen
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what or predicate}; screen was:\n{screen}")

    def exit_status(self, timeout: float = 15.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.status_file.exists() and self.status_file.read_text().strip():
                return int(self.status_file.read_text().strip())
            time.sleep(0.1)
        raise AssertionError(f"the app did not exit; screen:\n{self.screen()}")

    def kill(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], capture_output=True, check=False)
