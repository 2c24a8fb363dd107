"""The engine as its views see it: the protocol shared by the local engine and the remote client."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from engine.events import CoinSnapshot, Event


@dataclass(frozen=True, slots=True)
class CoinMatch:
    """One search result: a CoinGecko id with its display name and symbol."""

    id: str
    name: str
    symbol: str
    rank: int | None = None


Listener = Callable[[Event], None]


class EngineAPI(Protocol):
    """What the TUI needs from an engine, local or remote.

    Thread rule: listeners are called from an engine thread, never the UI thread; they must only
    hand the (immutable) event over, e.g. with ``App.call_from_thread`` or ``post_message``.
    Every method here returns quickly and never blocks on the network or on training; slow work
    (``search``, ``export``) is meant to be called from a worker thread.
    """

    mode: str  # "LIVE" | "DEMO" | "REMOTE"
    horizons: tuple[int, ...]
    vs_currency: str

    def subscribe(self, listener: Listener) -> None: ...

    def unsubscribe(self, listener: Listener) -> None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def coins(self) -> tuple[str, ...]: ...

    def snapshot(self, coin: str) -> CoinSnapshot: ...

    def add_coin(self, coin: str) -> None: ...

    def remove_coin(self, coin: str) -> None: ...

    def set_paused(self, paused: bool) -> None: ...

    def reset_model(self, coin: str) -> None: ...

    def search(self, query: str) -> list[CoinMatch]: ...

    def export(self, coin: str, path: Path | None = None) -> Path: ...
