"""Security: a sentinel API key never leaks (log, stderr, feed, database, exports, state); config
permissions are checked; checkpoints are loaded with weights_only=True only.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.settings.config import Settings, check_permissions
from engine.settings.locations import Locations
from tests.conftest import ROOT
from tests.fakes.coingecko_server import FakeCoinGecko

SENTINEL = "sk-SENTINEL-7f3a9c2e5b1d4e8f"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sentinel_key_never_leaves_the_header(tmp_path: Path) -> None:
    """serve (DEBUG logs) against the fake with faults, a feed client, then export: no trace of the key."""
    import websockets.sync.client

    home = tmp_path / "h"
    home.mkdir()
    frames: list[str] = []
    with FakeCoinGecko(require_key=SENTINEL) as cg:
        cg.add_fault("status", path="/simple/price", status=500)
        cg.add_fault("429", path="/simple/price", retry_after=1)
        cg.add_fault("reset", path="/coins/")
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("COINGECKO_")}
        env.update(CRYPTOTUI_HOME=str(home), COINGECKO_API_KEY=SENTINEL, COINGECKO_API_URL=cg.url)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tui",
                "serve",
                "--port",
                str(port),
                "--coins",
                "bitcoin,nosuchcoin",
                "--log-level",
                "DEBUG",
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            ws = None
            while ws is None:
                assert proc.poll() is None and time.monotonic() < deadline
                try:
                    ws = websockets.sync.client.connect(f"ws://127.0.0.1:{port}", open_timeout=2)
                except OSError:
                    time.sleep(0.1)
            with ws:
                # Until a good poll after the faults has been answered and a bar has gone out.
                while time.monotonic() < deadline:
                    try:
                        frames.append(str(ws.recv(timeout=0.5)))
                    except TimeoutError:
                        pass
                    if len([r for r in cg.calls("/simple/price") if r.fault is None]) >= 1 and any(
                        '"type": "bar"' in f or '"type":"bar"' in f for f in frames
                    ):
                        break
                ws.send(json.dumps({"op": "resync"}))
                frames.append(str(ws.recv(timeout=5)))
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        headers = [r.headers for r in cg.calls()]
    assert any(h.get("x-cg-demo-api-key") == SENTINEL for h in headers), (
        "the key was not used at all"
    )
    assert all(
        SENTINEL not in r
        for r in (json.dumps([dict(h) for h in headers if "x-cg-demo-api-key" not in h]),)
    )
    assert any("bar" in f for f in frames)
    exported = subprocess.run(
        [sys.executable, "-m", "tui", "export", "--coin", "bitcoin", "--out", "-"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert exported.returncode == 0, exported.stderr
    places = {
        "stdout": out,
        "stderr": err,
        "feed": "\n".join(frames),
        "export": exported.stdout + exported.stderr,
    }
    for path in home.rglob("*"):
        if path.is_file():
            places[str(path)] = path.read_bytes().decode("latin-1")
    assert "DEBUG" in places["stderr"]  # the most talkative logging was on
    leaks = [where for where, text in places.items() if SENTINEL in text or SENTINEL[3:] in text]
    assert leaks == []


def test_a_traceback_holding_the_key_is_masked_in_the_log(tmp_path: Path) -> None:
    """log.exception on an error whose text holds the key: the log file shows *** instead."""
    from tui.__main__ import setup_logging

    loc = Locations.resolve(tmp_path)
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        setup_logging(loc, Settings(api_key=SENTINEL), stderr=False)
        try:
            raise ValueError(f"Invalid header value {SENTINEL!r}")
        except ValueError:
            logging.getLogger("engine.test").exception("request failed")
    finally:
        for h in root.handlers[:]:
            if h not in before:
                h.close()
                root.removeHandler(h)
    text = loc.log_file.read_text()
    assert "ValueError: Invalid header value" in text and SENTINEL not in text


# Config file permissions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "text", "words"),
    [
        (0o644, 'api_key = "CG-x"\n', ["readable by everyone", "chmod 600"]),
        (0o640, '[cryptotui]\napi_key = "CG-x"\n', ["readable by your group", "mode 640"]),
        (0o604, 'api_key = "CG-x"\nbroken = [\n', ["readable by everyone"]),
        (0o600, 'api_key = "CG-x"\n', None),
        (0o644, 'vs = "usd"\n', None),
        (0o644, 'api_key = ""\n', None),
    ],
)
def test_check_permissions(tmp_path: Path, mode: int, text: str, words: list[str] | None) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(mode)
    msg = check_permissions(path)
    if words is None:
        assert msg is None
    else:
        assert msg is not None and str(path) in msg and "CG-x" not in msg
        for w in words:
            assert w in msg
    assert check_permissions(tmp_path / "missing.toml") is None


# Checkpoints ---------------------------------------------------------------------------------------


def test_every_torch_load_is_weights_only() -> None:
    found = []
    for p in (ROOT / "engine").rglob("*.py"):
        text = p.read_text()
        for m in re.finditer(r"torch\.load\(", text):
            found.append((p.name, text[m.end() :].split("\n", 1)[0]))  # the call's line
    assert found, "no torch.load found: has the checkpoint code moved?"
    for path, args in found:
        assert "weights_only=True" in args, f"{path}: torch.load({args})"
    for source in list((ROOT / "engine").rglob("*.py")) + list((ROOT / "tui").rglob("*.py")):
        text = source.read_text()
        assert not re.search(r"\bpickle\.loads?\(|\bmarshal\.loads?\(|\bdill\.", text), source
