"""The feed's one wire codec: events to JSON objects and frames, and JSON objects back to events.

Protocol ``"v": 1`` (docs/protocol.md, engine/data/protocol.schema.json). The server encodes with
it, the remote engine decodes with it; JSON has no NaN or infinity, so they travel as null and come
back as NaN where a float is expected.

A remote engine is foreign input: ``decode_foreign`` (events) and ``decode_hello`` (the first
frame) check every field of every frame by its type before anything is kept or shown. Every string
loses escape sequences and control characters and is bounded (``engine.text.clean``); every coin
id passes ``engine.ids``; numbers must be numbers within bounds (a price within the engine's
price bounds, a time before the year 10000, a count below 1e15); a currency is a short a-z code.
A field of the wrong type drops its frame (``ValueError``); lists beyond the viewer's caps are cut
and the cut is recorded in ``Caps.hit`` so the caller can say so once.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.events import (
    EVENT_TYPES,
    PROTOCOL_VERSION,
    Bar,
    BarEvent,
    CoinsEvent,
    CoinSnapshot,
    ErrorEvent,
    Event,
    ForecastEvent,
    HorizonMetrics,
    MetricsEvent,
    SnapshotEvent,
    StatusEvent,
    TrainEvent,
)
from engine.ids import is_coin_id
from engine.sources.base import MAX_PRICE, MIN_PRICE
from engine.text import clean

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


# --- decoding what a remote engine sends ---------------------------------------------------------

MAX_TS = 253_402_300_799  # 9999-12-31 23:59:59 UTC: every later time breaks date formatting
MAX_COUNT = 10**15  # steps, samples, scored predictions, request counts
MAX_LOG_RETURN = 20.0  # exp(20) = 5e8 times the price: beyond it a forecast value means nothing
MAX_SERIES = 64  # horizons, forecast values or metrics rows per event
MAX_LOSSES = 1000  # a training status's loss history (the engine keeps 120)
TEXT_LIMITS = {"title": 80, "msg": 400, "message": 400, "source": 40, "state": 40, "device": 40}
SYMBOL_LIMIT = 24


class BadFrame(ValueError):
    """A frame from a remote engine that breaks the protocol (its message says where)."""


@dataclass
class Caps:
    """The viewer's bounds on what one frame may add; ``hit`` names the caps a decode applied."""

    max_coins: int
    max_bars: int
    max_forecasts: int
    hit: dict[str, str] = field(default_factory=dict)  # cap name -> what was cut, in words

    def cut(self, items: list[Any], limit: int, name: str, what: str, newest: bool) -> list[Any]:
        if len(items) <= limit:
            return items
        self.hit.setdefault(name, f"{what}: {len(items)} sent, {limit} kept")
        return items[-limit:] if newest else items[:limit]


def _text(value: object, name: str = "", limit: int = 200) -> str:
    if not isinstance(value, str):
        raise BadFrame(f"{name or 'text'} is not a string")
    return clean(value, TEXT_LIMITS.get(name, limit))


def _coin(value: object) -> str:
    if not is_coin_id(value):
        raise BadFrame(f"not a coin id: {clean(value, 40)!r}")
    return value


def _int(value: object, low: int = 0, high: int = MAX_COUNT) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadFrame("an integer out of bounds")
    return value


def _opt_int(value: object) -> int | None:
    return None if value is None else _int(value)


def _float(value: object) -> float:
    """A float field: null is NaN (that is how NaN travels); anything but a number is refused."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadFrame("a number field is not a number")
    if isinstance(value, int) and abs(value) > MAX_COUNT:
        return math.nan
    v = float(value)
    return v if math.isfinite(v) else math.nan


def _opt_float(value: object) -> float | None:
    return None if value is None else _float(value)


def _price(value: object) -> float:
    v = _float(value)
    if not MIN_PRICE <= v <= MAX_PRICE:
        raise BadFrame("a price outside the engine's bounds")
    return v


def _opt_price(value: object) -> float | None:
    if value is None:
        return None
    v = _float(value)
    return v if MIN_PRICE <= v <= MAX_PRICE else None


def _list(value: object, limit: int) -> list[Any]:
    if not isinstance(value, list):
        raise BadFrame("a list field is not a list")
    if len(value) > limit:
        raise BadFrame("a list longer than the protocol allows")
    return value


def _returns(value: object) -> tuple[float, ...]:
    out = []
    for v in _list(value, MAX_SERIES):
        x = _float(v)
        out.append(x if abs(x) <= MAX_LOG_RETURN else math.nan)
    return tuple(out)


def _horizons(value: object) -> tuple[int, ...]:
    return tuple(_int(h, 1, 1440) for h in _list(value, MAX_SERIES))


def _ts(value: object) -> int:
    return _int(value, 0, MAX_TS)


def _bar(d: object) -> Bar:
    if not isinstance(d, dict):
        raise BadFrame("a bar is not an object")
    ts = _ts(d["ts"])
    volume = _opt_float(d.get("volume"))
    return Bar(
        _coin(d["coin"]),
        ts - ts % 60,
        _price(d["price"]),
        _opt_price(d.get("open")),
        _opt_price(d.get("high")),
        _opt_price(d.get("low")),
        volume if volume is not None and 0 <= volume <= MAX_PRICE else None,
        _text(d.get("source", ""), "source"),
        _bool(d.get("filled", False)),
    )


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise BadFrame("a true/false field is not a boolean")
    return value


def _forecast(d: object) -> ForecastEvent:
    if not isinstance(d, dict):
        raise BadFrame("a forecast is not an object")
    horizons = _horizons(d["horizons"])
    mean = _returns(d["mean"])
    if len(mean) != len(horizons):
        raise BadFrame("a forecast's mean does not match its horizons")
    bands = [_returns(d.get(k, [])) for k in ("lo80", "hi80", "lo95", "hi95", "raw")]
    if any(b and len(b) != len(horizons) for b in bands):
        raise BadFrame("a forecast's band does not match its horizons")
    return ForecastEvent(_coin(d["coin"]), _ts(d["ts"]), _price(d["price"]), horizons, mean, *bands)


_METRIC_INTS = {"horizon": (1, 1440), "n": (0, MAX_COUNT), "recent_n": (0, MAX_COUNT)}
_METRIC_TEXT = {"served80", "served95"}
SERVED_BANDS = ("", "network", "simple", "blend")


def _row(d: object) -> HorizonMetrics:
    if not isinstance(d, dict):
        raise BadFrame("a metrics row is not an object")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(HorizonMetrics):
        if f.name not in d:
            continue
        v = d[f.name]
        if f.name in _METRIC_INTS:
            kwargs[f.name] = _int(v, *_METRIC_INTS[f.name])
        elif f.name == "best_lag":
            kwargs[f.name] = _int(v, -MAX_COUNT, MAX_COUNT)
        elif f.name in _METRIC_TEXT:
            # An enum (which band is served): the UI looks its words up by it.
            kwargs[f.name] = v if v in SERVED_BANDS else ""
        else:
            kwargs[f.name] = _float(v)
    return HorizonMetrics(**kwargs)


def _metrics(d: object) -> MetricsEvent:
    if not isinstance(d, dict):
        raise BadFrame("metrics are not an object")
    return MetricsEvent(_coin(d["coin"]), tuple(_row(r) for r in _list(d["rows"], MAX_SERIES)))


def _train(d: object) -> TrainEvent:
    if not isinstance(d, dict):
        raise BadFrame("a training status is not an object")
    losses = tuple(_float(v) for v in _list(d.get("losses", []), MAX_LOSSES))
    progress = _opt_float(d.get("progress"))
    if progress is not None and not 0.0 <= progress <= 1.0:
        progress = None
    return TrainEvent(
        _coin(d["coin"]),
        _text(d["state"], "state"),
        _int(d.get("step", 0)),
        _opt_float(d.get("loss")),
        _opt_float(d.get("lr")),
        _opt_float(d.get("step_ms")),
        _int(d.get("samples", 0)),
        progress,
        _text(d.get("device", "cpu"), "device"),
        _text(d.get("message", ""), "message"),
        losses,
    )


def _status(d: object) -> StatusEvent:
    if not isinstance(d, dict):
        raise BadFrame("a status is not an object")

    def when(v: object) -> float | None:
        t = _opt_float(v)
        return t if t is not None and 0 <= t <= MAX_TS else None

    return StatusEvent(
        _text(d["source"], "source"),
        _text(d["state"], "state"),
        _text(d.get("message", ""), "message"),
        when(d.get("last_update")),
        when(d.get("next_update")),
        *(
            _opt_int(d.get(k))
            for k in ("calls_minute", "calls_month", "limit_minute", "limit_month")
        ),
    )


def _error(d: Mapping[str, Any]) -> ErrorEvent:
    coin = d.get("coin")
    return ErrorEvent(
        _text(d["title"], "title"),
        _text(d["msg"], "msg"),
        None if coin is None else _coin(coin),
    )


def _coin_list(value: object, caps: Caps) -> tuple[str, ...]:
    items = caps.cut(_list(value, 10**6), caps.max_coins, "coins", "coins", newest=False)
    return tuple(dict.fromkeys(_coin(c) for c in items))


def _coins(d: Mapping[str, Any], caps: Caps) -> CoinsEvent:
    coins = _coin_list(d["coins"], caps)
    unknown = tuple(c for c in _coin_list(d.get("unknown", []), caps) if c in coins)
    labels: list[tuple[str, str]] = []
    for pair in _list(d.get("labels", []), 10**6)[: caps.max_coins]:
        if isinstance(pair, list) and len(pair) == 2 and is_coin_id(pair[0]) and pair[0] in coins:
            labels.append((pair[0], _text(pair[1], "symbol", SYMBOL_LIMIT)))
    return CoinsEvent(coins, unknown, tuple(labels))


def _coin_snapshot(d: object, caps: Caps) -> CoinSnapshot:
    if not isinstance(d, dict):
        raise BadFrame("a coin snapshot is not an object")
    coin = _coin(d["coin"])
    bars = caps.cut(_list(d.get("bars", []), 10**7), caps.max_bars, "bars", "bars of a coin", True)
    fcs = caps.cut(
        _list(d.get("forecasts", []), 10**7),
        caps.max_forecasts,
        "forecasts",
        "forecasts of a coin",
        True,
    )
    metrics, train = d.get("metrics"), d.get("train")
    return CoinSnapshot(
        coin,
        tuple(b for b in map(_bar, bars) if b.coin == coin),
        tuple(f for f in map(_forecast, fcs) if f.coin == coin),
        None if metrics is None else _metrics(metrics),
        None if train is None else _train(train),
    )


def _snapshot(d: Mapping[str, Any], caps: Caps) -> SnapshotEvent:
    items = caps.cut(_list(d["coins"], 10**6), caps.max_coins, "coins", "coins", newest=False)
    seen: dict[str, CoinSnapshot] = {}
    for item in items:
        snap = _coin_snapshot(item, caps)
        seen.setdefault(snap.coin, snap)
    status = d.get("status")
    return SnapshotEvent(tuple(seen.values()), None if status is None else _status(status))


def decode_foreign(data: Mapping[str, Any], caps: Caps) -> Event:
    """An event from a remote engine's frame, every field checked (see the module docstring).

    Raises ``ValueError`` (or ``KeyError`` for a missing field) for a frame to drop.
    """
    kind = data.get("type")
    if kind == "bar":
        return BarEvent(_bar(data["bar"]))
    if kind == "forecast":
        return _forecast(data)
    if kind == "metrics":
        return _metrics(data)
    if kind == "train":
        return _train(data)
    if kind == "status":
        return _status(data)
    if kind == "error":
        return _error(data)
    if kind == "coins":
        return _coins(data, caps)
    if kind == "snapshot":
        return _snapshot(data, caps)
    raise BadFrame(f"unknown event type {clean(kind, 20)!r}")


@dataclass(frozen=True)
class Hello:
    """A remote engine's ``hello`` frame, checked: what the viewer keeps of it."""

    server: str
    protocol: object
    mode: str  # the served engine's mode: "LIVE" | "DEMO" ("" if it sent something else)
    coins: tuple[str, ...]
    horizons: tuple[int, ...] | None  # None: absent or unusable (the viewer keeps its own)
    vs_currency: str | None  # None: absent or not a currency code
    source_info: str
    holdings: dict[str, Any] | None  # the raw entries (checked by the holdings rule by the caller)
    problems: tuple[str, ...]  # what was refused, one line each


SERVED_MODES = ("LIVE", "DEMO")


def decode_hello(data: Mapping[str, Any], caps: Caps) -> Hello:
    """The checked ``hello``: a field that breaks its rule is left out and named in ``problems``
    (the connection goes on: a hello is never dropped whole)."""
    from engine.settings.config import currency_problem

    problems: list[str] = []
    server = clean(data.get("server", ""), 80) if isinstance(data.get("server"), str) else ""
    raw_mode = data.get("mode")
    mode = raw_mode if isinstance(raw_mode, str) and raw_mode in SERVED_MODES else ""
    if raw_mode is not None and not mode:
        problems.append(f"an unknown mode {clean(raw_mode, 20)!r}")
    try:
        coins = _coin_list(data.get("coins", []), caps)
    except ValueError:
        coins = tuple(c for c in (data.get("coins") or [])[: caps.max_coins] if is_coin_id(c))
        problems.append("coin ids that are not coin ids")
    horizons: tuple[int, ...] | None = None
    if data.get("horizons") is not None:
        try:
            horizons = _horizons(data["horizons"]) or None
        except ValueError:
            problems.append("horizons that are not 1..1440 minutes")
    vs = data.get("vs_currency")
    vs_currency: str | None = None
    if vs is not None:
        if currency_problem(vs) is None:
            vs_currency = vs.strip().lower()
        else:
            problems.append(f"a currency {clean(vs, 12)!r} that is not a code like usd")
    info = data.get("source_info", "")
    source_info = clean(info, 200) if isinstance(info, str) else ""
    holdings = data.get("holdings")
    if holdings is not None and not isinstance(holdings, dict):
        problems.append("holdings that are not an object")
        holdings = None
    return Hello(
        server,
        data.get("protocol"),
        mode,
        coins,
        horizons,
        vs_currency,
        source_info,
        holdings,
        tuple(problems),
    )


__all__ = [
    "BadFrame",
    "Caps",
    "Hello",
    "decode_foreign",
    "decode_hello",
    "encode",
    "from_dict",
    "to_dict",
]
