"""Desktop notifications through the optional ``desktop-notifier`` package (extra ``notify``).

Not a hard dependency: without it (or when the platform refuses), alerts that asked for a desktop
notification ring the terminal bell instead. The package is imported only when a notification is
really sent, so start-up does not pay for it.

``send`` is the one entry point: ``await send(title, message)``. It is an object, not a function,
so it can be kept anywhere (a class attribute included: an earlier version stored a function
there, which Python bound as a method, and every alert failed with a TypeError). It raises
``DesktopUnavailable`` when the notification was not delivered (no package, no notification
service); the caller falls back to the bell. ``desktop-notifier`` itself only logs a failed send,
so delivery is known from its ``on_dispatched`` callback.
"""

from __future__ import annotations

import asyncio
import html
import importlib.util
import logging
import platform
from collections.abc import Awaitable, Callable
from typing import Any

from engine.text import clean

log = logging.getLogger(__name__)

Sender = Callable[[str, str], Awaitable[None]]


class DesktopUnavailable(Exception):
    """The notification was not delivered; ``str()`` says why in a few words."""


def available() -> bool:
    """Whether ``desktop-notifier`` is installed (importable)."""
    try:
        return importlib.util.find_spec("desktop_notifier") is not None
    except (ImportError, ValueError):
        return False


class DesktopSender:
    """``await sender(title, message)`` shows one desktop notification, or raises
    ``DesktopUnavailable``. One notifier per event loop (its D-Bus connection lives on the loop)."""

    def __init__(self, app_name: str = "cryptotui") -> None:
        self.app_name = app_name
        self._notifier: tuple[asyncio.AbstractEventLoop, Any] | None = None

    def _get(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._notifier is None or self._notifier[0] is not loop:
            try:
                from desktop_notifier import DesktopNotifier
            except ImportError:
                raise DesktopUnavailable(
                    "desktop-notifier is not installed (pip install 'cryptotui[notify]')"
                ) from None
            self._notifier = (loop, DesktopNotifier(app_name=self.app_name, app_icon=None))
        return self._notifier[1]

    async def __call__(self, title: str, message: str) -> None:
        notifier = self._get()
        # Coin names and messages come from servers: text only, bounded. The freedesktop spec lets
        # a notification server read the body as markup (<a href>, <img>): escaped there.
        title, message = clean(title, 80), clean(message, 400)
        if platform.system() == "Linux":
            message = html.escape(message, quote=False)
        delivered: list[bool] = []
        await notifier.send(
            title=title, message=message, on_dispatched=lambda: delivered.append(True)
        )
        if not delivered:
            raise DesktopUnavailable("the desktop did not take the notification (see the log)")


send = DesktopSender()


__all__ = ["DesktopSender", "DesktopUnavailable", "Sender", "available", "send"]
