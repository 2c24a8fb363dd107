"""Desktop notifications through the real ``desktop-notifier`` API, delivered over a private session
D-Bus to a notification daemon of the test's own (issue 24, case 2: every alert used to fail with
a TypeError, because a function stored as a class attribute was bound as a method)."""

import asyncio
import os
import platform
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tui import desktop

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or shutil.which("dbus-daemon") is None,
    reason="needs Linux and dbus-daemon (a private session bus)",
)


@pytest.fixture
def session_bus(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A private session D-Bus (its own dbus-daemon), set as this process's session bus."""
    proc = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        assert address.startswith("unix:"), address
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        yield address
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(10)


def dbus(signature: dict[str, str], fn: Callable[..., Any]) -> Any:
    """``fn`` as a D-Bus method of the given argument and return signatures (dbus-fast reads them
    from the annotations, which are D-Bus type strings rather than Python types)."""
    from dbus_fast.service import method

    fn.__annotations__ = signature
    return method(name=fn.__name__)(fn)


def make_daemon() -> Any:
    """A freedesktop notification daemon (org.freedesktop.Notifications) that keeps what it gets."""
    from dbus_fast.service import ServiceInterface

    received: list[tuple[str, str, str]] = []

    def GetCapabilities(self: Any) -> list[str]:
        return ["body"]

    def CloseNotification(self: Any, nid: int) -> None:
        return None

    def GetServerInformation(self: Any) -> list[str]:
        return ["test-daemon", "cryptotui", "1", "1.2"]

    def notify(
        self: Any,
        app: str,
        rid: int,
        icon: str,
        summary: str,
        body: str,
        actions: list[str],
        hints: dict[str, Any],
        timeout: int,
    ) -> int:
        received.append((app, summary, body))
        return len(received)

    notify.__name__ = "Notify"
    names = ("app", "rid", "icon", "summary", "body", "actions", "hints", "timeout", "return")
    types = ("s", "u", "s", "s", "s", "as", "a{sv}", "i", "u")
    methods = {
        "Notify": dbus(dict(zip(names, types, strict=True)), notify),
        "GetCapabilities": dbus({"return": "as"}, GetCapabilities),
        "CloseNotification": dbus({"nid": "u", "return": ""}, CloseNotification),
        "GetServerInformation": dbus({"return": "ssss"}, GetServerInformation),
    }
    daemon_class = type("Daemon", (ServiceInterface,), methods)
    daemon = daemon_class("org.freedesktop.Notifications")
    daemon.received = received
    return daemon


async def with_daemon(run: Any) -> list[tuple[str, str, str]]:
    from dbus_fast.aio import MessageBus

    bus = await MessageBus().connect()
    daemon = make_daemon()
    bus.export("/org/freedesktop/Notifications", daemon)
    await bus.request_name("org.freedesktop.Notifications")
    try:
        await run()
    finally:
        bus.disconnect()
    return list(daemon.received)


def test_send_delivers_through_the_real_library(session_bus: str) -> None:
    async def run() -> None:
        await desktop.send("Bitcoin above 70,000", "now 70,012 <b>(was 69,990)</b>\x1b]52;c;x\x07")

    received = asyncio.run(with_daemon(run))
    assert received == [
        ("cryptotui", "Bitcoin above 70,000", "now 70,012 &lt;b&gt;(was 69,990)&lt;/b&gt;")
    ]


def test_send_works_as_a_class_attribute_called_through_an_instance(session_bus: str) -> None:
    # The old defect: a plain function stored on a class is bound as a method (3 arguments).
    class Controller:
        sender: desktop.Sender = desktop.send

    async def run() -> None:
        await Controller().sender("Ethereum: surprise move", "2,100 is above the 95% band")

    received = asyncio.run(with_daemon(run))
    assert [r[1] for r in received] == ["Ethereum: surprise move"]


def test_no_notification_service_raises_so_the_caller_rings_the_bell(session_bus: str) -> None:
    # A session bus with no notification daemon on it: the library only logs; send says so.
    with pytest.raises(desktop.DesktopUnavailable):
        asyncio.run(desktop.send("Bitcoin", "no daemon"))


def test_library_is_installed_for_the_tests() -> None:
    # The dev extra carries desktop-notifier, so these tests never skip in CI.
    assert desktop.available()
