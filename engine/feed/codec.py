"""The feed's one wire codec: events to JSON objects and frames, and JSON objects back to events.

Protocol ``"v": 1`` (docs/protocol.md, engine/data/protocol.schema.json). The server encodes with
it, the remote engine decodes with it; JSON has no NaN or infinity, so they travel as null and come
back as NaN where a float is expected.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from engine.events import (
    EVENT_TYPES,
    PROTOCOL_VERSION,
    Bar,
    BarEvent,
    CoinSnapshot,
    Event,
    ForecastEvent,
    HorizonMetrics,
    MetricsEvent,
    SnapshotEvent,
    StatusEvent,
    TrainEvent,
)

_FIELDS: dict[type, tuple[str, ...]] = {}


def _plain(value: Any) -> Any:
    """JSON-ready copy of an event value: dataclasses as objects, tuples as lists, NaN/inf as null.

    ``dataclasses.asdict`` deep-copies every leaf; for 7200 events a second to 50 clients that
    copy was the server's whole CPU budget. Events are immutable, so a shallow walk is enough.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, (tuple, list)):
        if value and type(value[0]) is float:
            try:  # the common case (series of finite floats) at C speed
                if all(map(math.isfinite, value)):
                    return list(value)
            except TypeError:
                pass
        return [_plain(v) for v in value]
    cls = type(value)
    names = _FIELDS.get(cls)
    if names is None:
        if not dataclasses.is_dataclass(value):
            return value
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(value))
    return {name: _plain(getattr(value, name)) for name in names}


def to_dict(event: Event) -> dict[str, Any]:
    """The JSON object of an event, with ``v`` and ``type``."""
    return {"v": PROTOCOL_VERSION, "type": event.type, **_plain(event)}


def encode(obj: dict[str, Any]) -> bytes:
    """One compact JSON frame (an event's ``to_dict`` or any other protocol object)."""
    # allow_nan=False: a NaN that slipped past _plain must fail here, not on the client.
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _build(cls: type, data: dict[str, Any]) -> Any:
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        kwargs[f.name] = _convert(cls, f, data[f.name])
    return cls(**kwargs)


_NESTED: dict[tuple[type, str], type] = {}


def _convert(cls: type, f: dataclasses.Field[Any], value: Any) -> Any:
    nested = _NESTED.get((cls, f.name))
    if nested is not None:
        if value is None:
            return None
        if isinstance(value, list):
            return tuple(_build(nested, v) for v in value)
        return _build(nested, value)
    if isinstance(value, list):
        return tuple(tuple(v) if isinstance(v, list) else v for v in value)
    if value is None and f.type in ("float",):
        return float("nan")
    return value


_NESTED.update(
    {
        (BarEvent, "bar"): Bar,
        (MetricsEvent, "rows"): HorizonMetrics,
        (CoinSnapshot, "bars"): Bar,
        (CoinSnapshot, "forecasts"): ForecastEvent,
        (CoinSnapshot, "metrics"): MetricsEvent,
        (CoinSnapshot, "train"): TrainEvent,
        (SnapshotEvent, "coins"): CoinSnapshot,
        (SnapshotEvent, "status"): StatusEvent,
    }
)


def from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from its JSON object; raises ``ValueError`` on an unknown type."""
    cls = EVENT_TYPES.get(data.get("type", ""))
    if cls is None:
        raise ValueError(f"unknown event type {data.get('type')!r}")
    return _build(cls, data)


__all__ = ["encode", "from_dict", "to_dict"]
