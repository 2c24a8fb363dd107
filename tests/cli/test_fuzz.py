"""Fuzzing every parser with hypothesis: only the project's own errors (engine.errors) may come out.

Replay CSV rows, config TOML, codec.from_dict (the feed's decoder), CoinGecko bodies, Kraken
frames, and the remote client's frame handling. Whatever a parser accepts must be clean data
(finite positive prices, minute-aligned, time-ordered).
"""

from __future__ import annotations

import json
import math
import threading
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import ConfigError, SourceError
from engine.events import EVENT_TYPES, Bar
from engine.feed.codec import from_dict
from engine.settings.config import Settings, load_config_file, settings_from
from engine.sources.coingecko import CoinGeckoSource
from engine.sources.replay import read_csv

FAST = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**15),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def clean(bars: list[Bar]) -> None:
    last: dict[str, int] = {}
    for b in bars:
        assert isinstance(b.price, float) and math.isfinite(b.price) and b.price > 0, b
        assert isinstance(b.ts, int) and b.ts % 60 == 0, b
        assert b.ts > last.get(b.coin, -(10**18)), b
        last[b.coin] = b.ts


# Replay CSV ---------------------------------------------------------------------------------------

cell = st.one_of(
    st.integers(-(10**14), 10**14).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "nan", "inf", "-0", "1e309", "0x10", " 5 ", '"7"', "1,5"]),
    st.text(max_size=6),
)


@FAST
@given(
    rows=st.lists(st.lists(cell, min_size=0, max_size=8), max_size=30), tail=st.binary(max_size=40)
)
def test_replay_csv_rows(
    tmp_path_factory: pytest.TempPathFactory, rows: list[list[str]], tail: bytes
) -> None:
    path = tmp_path_factory.mktemp("csv") / "f.csv"
    body = "".join(",".join(r) + "\n" for r in rows).encode("utf-8", "replace")
    path.write_bytes(b"timestamp_ms,open,high,low,close,volume\n" + body + tail)
    try:
        report = read_csv(path, "bitcoin")
    except ConfigError:
        return
    clean(list(report.bars))
    assert all(isinstance(line, int) and reason for line, reason in report.rejected)


@FAST
@given(data=st.binary(max_size=300))
def test_replay_csv_any_bytes(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("csv") / "f.csv"
    path.write_bytes(data)
    try:
        clean(list(read_csv(path, "x").bars))
    except ConfigError:
        pass


# Config TOML -----------------------------------------------------------------------------------------

KEYS = [
    "coins",
    "vs",
    "source",
    "speed",
    "horizons",
    "api_url",
    "api_key",
    "api_plan",
    "kraken_url",
    "poll_seconds",
    "calls_per_minute",
    "calls_per_month",
    "log_level",
    "shared_model",
    "train_steps_per_minute",
    "cryptotui",
    "alerts",
    "bogus",
]
toml_literal = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(
        lambda f: (
            "nan" if math.isnan(f) else ("inf" if f > 0 else "-inf") if math.isinf(f) else repr(f)
        )
    ),
    st.booleans().map(lambda b: "true" if b else "false"),
    st.text(max_size=10).map(json.dumps),
    st.lists(
        st.one_of(st.integers(-5, 2000).map(str), st.text(max_size=6).map(json.dumps)), max_size=4
    ).map(lambda xs: "[" + ", ".join(xs) + "]"),
    st.just("{ a = 1 }"),
    st.just("[[x]]"),
    st.text(max_size=8),
)


@FAST
@given(
    lines=st.lists(st.tuples(st.sampled_from(KEYS), toml_literal), max_size=6),
    section=st.booleans(),
    noise=st.text(max_size=20),
)
def test_config_files(
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[tuple[str, str]],
    section: bool,
    noise: str,
) -> None:
    path = tmp_path_factory.mktemp("cfg") / "config.toml"
    text = ("[cryptotui]\n" if section else "") + "".join(f"{k} = {v}\n" for k, v in lines) + noise
    path.write_text(text, encoding="utf-8", errors="replace")
    try:
        values = load_config_file(path)
        s = settings_from(values, env={})
    except ConfigError as exc:
        assert (
            str(path) in exc.msg
            or "API plan" in exc.msg
            or "source" in exc.msg
            or "speed" in exc.msg
        )
        return
    assert isinstance(s, Settings) and s.speed > 0 and s.poll_seconds > 0 and s.coins


# codec.from_dict -----------------------------------------------------------------------------------


@FAST
@given(
    kind=st.sampled_from([*EVENT_TYPES, "nope", ""]),
    body=st.dictionaries(
        st.sampled_from(
            [
                "coin",
                "ts",
                "price",
                "bar",
                "coins",
                "rows",
                "horizons",
                "mean",
                "state",
                "title",
                "msg",
                "status",
                "unknown",
                "labels",
                "bars",
                "forecasts",
                "metrics",
                "train",
                "x",
            ]
        ),
        json_values,
        max_size=6,
    ),
)
def test_from_dict_raises_only_what_the_client_catches(kind: str, body: dict[str, Any]) -> None:
    try:
        from_dict({"v": 1, "type": kind, **body})
    except (ValueError, TypeError):
        pass  # documented (ValueError) and caught by engine.feed.remote (both)


# CoinGecko bodies ---------------------------------------------------------------------------------


class OneAnswer:
    """A requests-like session answering every GET with one canned response."""

    def __init__(self, status: int, content: bytes, headers: dict[str, str]) -> None:
        self.status, self.content, self.headers = status, content, headers

    def get(self, url: str, **kw: Any) -> requests.Response:
        r = requests.Response()
        r.status_code = self.status
        r._content = self.content
        r.headers.update(self.headers)
        r.url = url
        return r


bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(
        st.sampled_from(["bitcoin", "ethereum", "x"]),
        st.one_of(
            json_values,
            st.fixed_dictionaries({"usd": json_scalars, "last_updated_at": json_scalars}),
        ),
        max_size=3,
    ).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"prices": st.lists(st.lists(json_scalars, max_size=3), max_size=5)}).map(
        lambda v: json.dumps(v).encode()
    ),
    st.binary(max_size=60),
)


@FAST
@given(
    status=st.sampled_from([200, 200, 200, 400, 401, 404, 429, 500, 503]),
    content=bodies,
    headers=st.dictionaries(
        st.sampled_from(["retry-after", "x-ratelimit-reset", "content-type"]),
        st.text(max_size=30),
        max_size=3,
    ),
)
def test_coingecko_bodies(status: int, content: bytes, headers: dict[str, str]) -> None:
    now = [1_790_000_000.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds  # a 429 blocks the budget for at least 1 s: time must pass in a wait

    out: list[Any] = []
    src = CoinGeckoSource(
        Settings(api_url="http://127.0.0.1:9/api/v3"),
        session=OneAnswer(status, content, headers),  # type: ignore[arg-type]
        clock=lambda: now[0],
        sleep=sleep,
        last_bar_ts=lambda c: None,
    )
    src._emit = out.append
    try:
        src._cycle(("bitcoin", "ethereum"), threading.Event())
    except SourceError:
        pass
    clean([b for b in out if isinstance(b, Bar)])
    try:
        src.search("bit")
    except SourceError:
        pass


# Kraken frames ------------------------------------------------------------------------------------

candle = st.fixed_dictionaries(
    {
        "symbol": st.sampled_from(["BTC/USD", "ETH/USD", "XXX/USD"]),
        "interval": st.one_of(st.just(1), json_scalars),
        "interval_begin": st.one_of(
            st.just("2026-05-18T08:01:00.000000000Z"), st.text(max_size=30), json_scalars
        ),
        "open": json_scalars,
        "high": json_scalars,
        "low": json_scalars,
        "close": json_scalars,
        "volume": json_scalars,
    }
)
frames = st.one_of(
    st.fixed_dictionaries(
        {
            "channel": st.sampled_from(["ohlc", "status", "heartbeat"]),
            "type": st.sampled_from(["snapshot", "update", "x"]),
            "data": st.one_of(st.lists(candle, max_size=3), json_values),
        }
    ),
    st.fixed_dictionaries(
        {
            "method": st.sampled_from(["subscribe", "pong"]),
            "success": json_scalars,
            "error": json_scalars,
            "symbol": json_scalars,
            "result": json_values,
        }
    ),
    json_values,
).map(json.dumps) | st.text(max_size=40)


@FAST
@given(raw=st.lists(frames, min_size=1, max_size=4))
def test_kraken_frames(raw: list[str]) -> None:
    from engine.sources.kraken import KrakenSource

    out: list[Any] = []
    src = KrakenSource(
        Settings(source="kraken"), clock=lambda: 1_790_000_000.0, last_bar_ts=lambda c: None
    )
    src._emit = out.append
    src._pair_coin = {"BTC/USD": "bitcoin", "ETH/USD": "ethereum"}
    for frame in raw:
        src._handle(frame)
    clean([b for b in out if isinstance(b, Bar)])


# The remote client's frame handling -------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        [
            {"v": 1, "type": "bar", "bar": {"coin": "bitcoin", "ts": 60, "price": 1.0}},
            {"v": 1, "type": "bar", "bar": {"coin": "bitcoin", "ts": "later", "price": 1.0}},
        ],
        [{"v": 1, "type": "hello", "horizons": 5}],
    ],
)
def test_remote_bad_frames_known(frame: list[dict[str, Any]]) -> None:
    from engine.feed.remote import RemoteEngine

    client = RemoteEngine("ws://127.0.0.1:9")
    for f in frame:
        client._on_frame(f)


def test_a_json_null_body_is_not_called_truncated() -> None:
    """``null`` is valid JSON of the wrong shape; the user must not be told the answer was cut off."""
    src = CoinGeckoSource(
        Settings(api_url="http://127.0.0.1:9/api/v3"),
        session=OneAnswer(200, b"null", {}),  # type: ignore[arg-type]
        clock=lambda: 1_790_000_000.0,
        sleep=lambda s: None,
        last_bar_ts=lambda c: None,
    )
    with pytest.raises(SourceError) as info:
        src._cycle(("bitcoin",), threading.Event())
    assert "truncated" not in info.value.msg
    assert "unexpected shape" in info.value.msg
