"""The contract every source keeps with the engine."""

from __future__ import annotations

import threading
from typing import Callable, Protocol, Union

from engine.api import CoinMatch
from engine.events import Bar, CoinsEvent, ErrorEvent, StatusEvent

# What a source hands the engine: bars (in time order per coin), its status, errors, and
# changes in which coins it can serve (``CoinsEvent.unknown`` for ids it does not know).
SourceOutput = Union[Bar, StatusEvent, ErrorEvent, CoinsEvent]
Emit = Callable[[SourceOutput], None]


class Source(Protocol):
    """A source runs in its own thread: ``run`` blocks until ``stop`` is set.

    ``coins()`` is read at every poll/subscription so the watchlist can change while it runs.
    ``search`` may be slow (network) and is called from a worker thread, never the UI thread.
    """

    name: str

    def run(self, coins: Callable[[], tuple[str, ...]], emit: Emit, stop: threading.Event) -> None: ...

    def search(self, query: str) -> list[CoinMatch]: ...
