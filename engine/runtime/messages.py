"""What the engine's threads send each other: small frozen records, one class per request.

The dispatch thread reads ``DispatchMessage``s (from the source thread and the API), the model
thread ``ModelMessage``s (from the dispatch thread and the API). ``kind`` names a message in logs
and in the errors shown to the user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from engine.events import Bar
from engine.sources.base import SourceOutput


@dataclass(frozen=True, slots=True)
class Stop:
    kind: ClassVar[str] = "stop"


@dataclass(frozen=True, slots=True)
class FromSource:
    item: SourceOutput
    kind: ClassVar[str] = "src"


@dataclass(frozen=True, slots=True)
class AddCoin:
    coin: str
    kind: ClassVar[str] = "add"


@dataclass(frozen=True, slots=True)
class RemoveCoin:
    coin: str
    kind: ClassVar[str] = "remove"


@dataclass(frozen=True, slots=True)
class NewBar:
    bar: Bar
    kind: ClassVar[str] = "bar"


@dataclass(frozen=True, slots=True)
class SetPaused:
    paused: bool
    kind: ClassVar[str] = "pause"


@dataclass(frozen=True, slots=True)
class ResetModel:
    coin: str
    kind: ClassVar[str] = "reset"


DispatchMessage = FromSource | AddCoin | RemoveCoin | Stop
ModelMessage = NewBar | SetPaused | ResetModel | AddCoin | RemoveCoin | Stop

__all__ = [
    "AddCoin",
    "DispatchMessage",
    "FromSource",
    "ModelMessage",
    "NewBar",
    "RemoveCoin",
    "ResetModel",
    "SetPaused",
    "Stop",
]
