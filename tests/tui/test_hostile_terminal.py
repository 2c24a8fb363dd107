"""The real ``cryptotui --connect`` in a pseudo-terminal, on a hostile feed server (real WebSockets
on 127.0.0.1) whose every frame carries terminal escapes and markup: the bytes written to the
terminal hold none of the peer's escape sequences, only Textual's own (issue 24, case 1)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from tests.conftest import ROOT
from tests.fakes.hostile_feed import ESCAPES, MARK, hostile_server


def run_in_pty(
    args: list[str], home: Path, seconds: float, keys: list[tuple[float, bytes]]
) -> bytes:
    """Run ``python -m tui ARGS`` on a 120x40 pseudo-terminal for ``seconds``, typing ``keys``
    (at the given times), then ``q``; everything it wrote to the terminal."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COINGECKO_", "CRYPTOTUI_"))}
    env.update(PYTHONPATH=str(ROOT), CRYPTOTUI_HOME=str(home), TERM="xterm-256color", TZ="UTC")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    out = bytearray()
    start = time.monotonic()
    pending = sorted(keys) + [(seconds, b"q")]
    try:
        while time.monotonic() - start < seconds + 15:
            while pending and time.monotonic() - start >= pending[0][0]:
                os.write(master, pending.pop(0)[1])
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the app exited and closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None and not pending:
                break
        proc.wait(15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        os.close(master)
    return bytes(out)


def test_connect_to_a_hostile_engine_writes_none_of_its_escapes_to_the_terminal(
    tmp_path: Path,
) -> None:
    with hostile_server() as url:
        # e: an export whose reply is hostile; a: a search whose results are hostile.
        keys = [(6.0, b"e"), (7.0, b"a"), (8.0, b"b"), (10.0, b"\x1b")]
        out = run_in_pty(["--connect", url], tmp_path / "home", 12.0, keys)
    assert b"Watchlist" in out and len(out) > 10_000, out[-2000:]
    # The peer's escapes carry the marker in their payload: none reached the terminal.
    for esc in ESCAPES:
        assert esc not in out, esc
    assert not re.search(rb"\x1b\][0-9]*;[^\x07\x1b]*" + MARK.encode(), out)
    assert b"\x1b]52" not in out  # nobody writes the clipboard
    assert b"\x1b[7777;7777H" not in out  # the peer's cursor move
    # Textual's own: one OSC (22, the pointer shape), ended by BEL. Nothing else of those kinds:
    # no other OSC or BEL, no clear-screen, no string terminator, no DCS.
    osc = re.findall(rb"\x1b\][^\x07\x1b]*", out)
    assert set(osc) <= {b"\x1b]22;default"}, set(osc)
    assert out.count(b"\x07") == len(osc)
    for esc in (b"\x1b[2J", b"\x1b\\", b"\x1bP"):
        assert esc not in out, esc
    # 8-bit controls (C1) would reach the terminal UTF-8 encoded.
    for c1 in (b"\xc2\x9b", b"\xc2\x9d", b"\xc2\x9c", b"\xc2\x90"):
        assert c1 not in out, c1
    # The peer's words did reach the screen, as text: its markup shows as typed.
    assert b"[red]x[/red]" in out
    assert (tmp_path / "home" / "exports").is_dir()  # the export went to the viewer's --home
