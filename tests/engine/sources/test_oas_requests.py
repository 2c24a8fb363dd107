"""Every request the CoinGecko source sends, and every fake answer, checked against the spec."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests

from engine.settings.config import Settings
from engine.sources.coingecko import CoinGeckoSource
from tests.conftest import SHARED
from tests.engine.sources.test_coingecko import Sim
from tests.fakes.coingecko_server import FakeCoinGecko, Recorded

SPEC_FILE = SHARED / "specs" / "coingecko-demo-api.oas3.json"
KEY = "CG-oas-check-0123456789"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return json.loads(Path(SPEC_FILE).read_text(encoding="utf-8"))


def operation(spec: dict[str, Any], path: str) -> tuple[str, dict[str, Any]]:
    """The spec's path template matching ``path`` and its GET operation."""
    for template, item in spec["paths"].items():
        pattern = "^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and "get" in item:
            return template, item["get"]
    raise AssertionError(f"{path} is not in the CoinGecko spec")


def parameters(spec: dict[str, Any], op: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in op.get("parameters", []):
        if "$ref" in p:
            p = spec["components"]["parameters"][p["$ref"].split("/")[-1]]
        out.append(p)
    return out


def check_request(spec: dict[str, Any], r: Recorded) -> str:
    template, op = operation(spec, r.path)
    params = {p["name"]: p for p in parameters(spec, op) if p["in"] == "query"}
    for name, values in r.query.items():
        assert name in params, f"{template}: {name!r} is not a documented parameter"
        assert len(values) == 1, f"{template}: {name!r} sent twice"
        kind = params[name].get("schema", {}).get("type")
        if kind == "boolean":
            assert values[0] in ("true", "false"), f"{template}: {name}={values[0]!r}"
        if kind == "integer":
            assert values[0].lstrip("-").isdigit()
    for name, p in params.items():
        if p.get("required"):
            assert name in r.query, f"{template}: required {name!r} missing"
    # The key travels in the header the spec's security scheme names, never in the query.
    scheme = spec["components"]["securitySchemes"]["headerAuth"]
    assert r.headers.get(scheme["name"].lower()) == KEY
    assert spec["components"]["securitySchemes"]["queryAuth"]["name"] not in r.query
    return template


def test_every_request_the_source_sends_is_in_the_spec(spec):
    sim = Sim()
    with FakeCoinGecko(clock=sim.clock) as cg:
        src = CoinGeckoSource(
            Settings(api_url=cg.url, api_key=KEY),
            clock=sim.clock,
            sleep=sim.sleep,
            last_bar_ts=lambda c: None,
        )
        sim.run(src, ("bitcoin", "ethereum", "notacoin"), 180)
        src.search("bitcoin")
    used = {check_request(spec, r) for r in cg.requests}
    assert used == {"/simple/price", "/coins/{id}/market_chart", "/search"}


def validator(spec: dict[str, Any], template: str) -> jsonschema.Validator:
    ok = spec["paths"][template]["get"]["responses"]["200"]
    ref = ok["content"]["application/json"]["schema"]
    schema = {**ref, "components": spec["components"]}
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema)


@pytest.mark.parametrize(
    ("template", "url_path", "params"),
    [
        (
            "/simple/price",
            "/simple/price",
            {
                "ids": "bitcoin,ethereum",
                "vs_currencies": "usd,eur",
                "include_last_updated_at": "true",
            },
        ),
        (
            "/coins/{id}/market_chart",
            "/coins/bitcoin/market_chart",
            {"vs_currency": "usd", "days": "1"},
        ),
        ("/search", "/search", {"query": "sol"}),
        ("/ping", "/ping", {}),
    ],
)
def test_fake_answers_match_the_spec_schemas(spec, template, url_path, params):
    with FakeCoinGecko() as cg:
        body = requests.get(cg.url + url_path, params=params, timeout=5).json()
    validator(spec, template).validate(body)
    if template == "/simple/price":
        assert set(body) == {"bitcoin", "ethereum"}
        assert set(body["bitcoin"]) == {"usd", "eur", "last_updated_at"}


def test_the_recorded_examples_validate_too(spec):
    # Guards the validator itself: the spec's own examples must pass, a wrong shape must fail.
    data = SHARED / "data" / "coingecko"
    example = json.loads((data / "oas2026_simple_price.json").read_text())
    validator(spec, "/simple/price").validate(example)
    validator(spec, "/search").validate(json.loads((data / "oas2026_search.json").read_text()))
    with pytest.raises(jsonschema.ValidationError):
        validator(spec, "/coins/{id}/market_chart").validate({"prices": "not a list"})


def test_unknown_coin_gets_the_recorded_404_body():
    with FakeCoinGecko() as cg:
        resp = requests.get(
            cg.url + "/coins/notacoin/market_chart",
            params={"vs_currency": "usd", "days": "1"},
            timeout=5,
        )
    assert resp.status_code == 404
    assert resp.json() == {"error": "coin not found"}
