"""Desktop notifications through the optional ``desktop-notifier`` package (extra ``notify``).

Not a hard dependency: without it (or when the platform refuses), alerts that asked for a desktop
notification ring the terminal bell instead. The package is imported only when a notification is
really sent, so start-up does not pay for it.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Sender = Callable[[str, str], Awaitable[None]]


def available() -> bool:
    """Whether ``desktop-notifier`` is installed (importable)."""
    try:
        return importlib.util.find_spec("desktop_notifier") is not None
    except (ImportError, ValueError):
        return False


async def send(title: str, message: str) -> None:
    """Show one desktop notification; raises whatever the platform raises (the caller falls back)."""
    from desktop_notifier import DesktopNotifier

    await DesktopNotifier(app_name="cryptotui").send(title=title, message=message)
