"""``cryptotui backtest``: CSV reading, bar aggregation, CLI errors, JSON, and forecast quality."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from engine.forecast.backtest import aggregate, native_spacing, read_bars
from tests.conftest import SHARED
from tui.__main__ import run_backtest


def main(argv: list[str]) -> int:
    """``cryptotui backtest ARGV``'s exit status (bad input exits through SystemExit)."""
    try:
        return run_backtest(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


from engine.errors import ConfigError
from engine.events import Bar

EVAL = SHARED / "data" / "eval"
if not EVAL.is_dir():  # the shared data sits beside the working tree
    EVAL = Path("/work/shared/data/eval")
KEYS = {
    "file",
    "horizon",
    "n",
    "mae",
    "rmse",
    "mae_persistence",
    "rmse_persistence",
    "rel_mae",
    "rel_rmse",
    "dir_acc",
    "coverage80",
    "coverage95",
    "width80",
    "best_lag",
    # proper scores of the served band, the network's own band and ewma-band (issue 13)
    "interval_score80",
    "interval_score95",
    "pinball",
    "network_interval_score80",
    "network_interval_score95",
    "ewma_band_interval_score80",
    "ewma_band_interval_score95",
    "network_coverage80",
    "ewma_band_coverage80",
    "served80",
    "served95",
}


def write_csv(
    path: Path, n: int, step: int = 60, seed: int = 4, skip: tuple[int, ...] = ()
) -> Path:
    rng = random.Random(seed)
    p = 100.0
    lines = ["timestamp_ms,open,high,low,close,volume"]
    for i in range(n):
        o = p
        p *= math.exp(rng.gauss(0.0, 1e-3))
        if i in skip:
            continue
        ts = (1_650_000_000 - 1_650_000_000 % 3600 + step * i) * 1000
        lines.append(f"{ts},{o},{max(o, p) * 1.0002},{min(o, p) * 0.9998},{p},{rng.random():.3f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_read_bars_and_spacing(tmp_path: Path) -> None:
    bars = read_bars(write_csv(tmp_path / "fc_btc.csv", 50, skip=(10, 11)))
    assert len(bars) == 48 and bars[0].coin == "fc_btc" and bars[0].source == "replay"
    assert bars[0].ts % 60 == 0 and bars[1].ts - bars[0].ts == 60
    assert native_spacing(bars) == 60
    five = read_bars(write_csv(tmp_path / "fc_5m.csv", 30, step=300))
    assert native_spacing(five) == 300


def test_aggregate_to_five_minutes_keeps_ohlc_and_gaps() -> None:
    bars = [
        Bar("x", 600 + 60 * i, 100.0 + i, 100.0 + i, 101.0 + i, 99.0 + i, 1.0) for i in range(10)
    ]
    bars = bars[:2] + bars[5:]  # minutes 2..4 missing: their bucket keeps two bars
    out = aggregate(bars, 300)
    assert [b.ts for b in out] == [600, 900]
    first, second = out
    assert (
        first.open == 100.0 and first.price == 101.0 and first.high == 102.0 and first.low == 99.0
    )
    assert second.open == 105.0 and second.price == 109.0 and second.volume == 5.0
    assert aggregate([], 300) == []


@pytest.mark.parametrize(
    "argv, words",
    [
        (["missing.csv"], "no such file"),
        (["{csv}", "--horizons", "1,x"], "invalid horizons"),
        (["{csv}", "--horizons", "0"], "invalid horizons"),
        (["{csv}", "--bar", "2m"], "invalid --bar"),
        (["{csv}", "--frobnicate"], "unrecognized arguments"),
        (["{bad}"], "line 3"),
        ([], "required"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    csv = write_csv(tmp_path / "fc_ok.csv", 20)
    bad = tmp_path / "fc_bad.csv"
    bad.write_text("timestamp_ms,open,high,low,close,volume\n1000,1,1,1,1,1\n2000,1,oops,1,1,1\n")
    argv = [a.format(csv=csv, bad=bad) for a in argv]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and words in err and "Traceback" not in err


def test_json_output_has_the_issue_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = write_csv(tmp_path / "fc_json.csv", 160)
    assert main([str(csv), "--horizons", "1,5", "--json", "--seed", "3"]) == 0
    out, err = capsys.readouterr()
    obj = json.loads(out)
    assert out.count("\n") == 1 and err == ""  # no progress bar when stderr is not a terminal
    assert len(obj["results"]) == 2 and obj["minutes_per_second"] > 0
    for row in obj["results"]:
        assert KEYS <= set(row) and row["file"] == "fc_json" and row["n"] > 0


def test_predictions_csv_checks_out_in_a_spreadsheet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import csv

    from engine.forecast.evaluate import interval_score

    src = write_csv(tmp_path / "fc_pred.csv", 200)
    out = tmp_path / "pred.csv"
    assert main([str(src), "--horizons", "1,5", "--json", "--predictions", str(out)]) == 0
    rows = json.loads(capsys.readouterr().out)["results"]
    with out.open() as fh:
        preds = list(csv.DictReader(fh))
    assert list(preds[0]) == [
        "coin",
        "issued_ts",
        "horizon",
        "price",
        "outcome",
        "mean",
        "raw_mean",
        "lo80",
        "hi80",
        "lo95",
        "hi95",
    ]
    bars = {b.ts: b.price for b in read_bars(src)}
    for h, row in zip((1, 5), rows):
        mine = [p for p in preds if int(p["horizon"]) == h]
        assert len(mine) == row["n"]
        for p in mine:  # the outcome is the realised log return from the issuing minute
            ts = int(p["issued_ts"])
            assert float(p["price"]) == bars[ts]
            assert float(p["outcome"]) == pytest.approx(math.log(bars[ts + 60 * h] / bars[ts]))
        score = sum(
            interval_score(float(p["lo80"]), float(p["hi80"]), float(p["outcome"]), 0.2)
            for p in mine
        ) / len(mine)
        assert score == pytest.approx(row["interval_score80"])
        hits = sum(float(p["lo95"]) <= float(p["outcome"]) <= float(p["hi95"]) for p in mine)
        assert hits / len(mine) == pytest.approx(row["coverage95"])


def test_predictions_into_a_missing_folder_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_csv(tmp_path / "fc_nodir.csv", 50)
    assert main([str(src), "--predictions", str(tmp_path / "nope" / "p.csv")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "no such folder" in err


def test_table_fits_100_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_csv(tmp_path / "a_rather_long_file_name_for_the_table.csv", 120)
    assert main([str(src), "--horizons", "1,5", "--steps", "0"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100
    assert "ewma-band" in out and "IS80" in out and "served" in out


def test_backtest_is_the_live_code_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from engine.forecast.forecaster import ForecastConfig, Forecaster

    csv = write_csv(tmp_path / "fc_same.csv", 150)
    assert main([str(csv), "--horizons", "1,5", "--json", "--seed", "2"]) == 0
    rows = json.loads(capsys.readouterr().out)["results"]
    fc = Forecaster("fc_same", ForecastConfig(horizons=(1, 5)), seed=2)
    for bar in read_bars(csv):
        fc.observe(bar)
        fc.train()
    live = fc.metrics().rows
    assert [r["mae"] for r in rows] == [m.mae for m in live]
    assert [r["coverage80"] for r in rows] == [m.coverage80 for m in live]


def test_table_and_shared_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_csv(tmp_path / "fc_a.csv", 120, seed=1)
    b = write_csv(tmp_path / "fc_b.csv", 120, seed=2)
    assert main([str(a), str(b), "--horizons", "1", "--shared-model", "--steps", "1"]) == 0
    out = capsys.readouterr().out
    assert "percoin" in out and "shared" in out and "per second" in out
    assert out.count("fc_a") == 2 and out.count("fc_b") == 2


def test_read_bars_rejects_time_going_back(tmp_path: Path) -> None:
    p = tmp_path / "fc_back.csv"
    p.write_text("2000,1,1,1,1,1\n1000,1,1,1,1,1\n")
    with pytest.raises(ConfigError, match="line 2"):
        read_bars(p)


@pytest.mark.skipif(not EVAL.is_dir(), reason="shared eval data not present")
@pytest.mark.parametrize(
    "name",
    [
        "lean_BTCUSD_coinbase_1m_20171217-20171217.csv",
        "ta4j_ETHUSD_binanceus_5m_20230313-20230315.csv",
    ],
)
def test_quality_on_real_data(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Never worse than "no change", no lagged copy, no leak, roughly calibrated (issue 8)."""
    assert main([str(EVAL / name), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["results"]
    assert [r["horizon"] for r in rows] == [1, 5, 15, 60]
    for r in rows:
        assert r["n"] > 400
        assert r["rel_mae"] <= 1.0 and r["rel_rmse"] <= 1.0, r
        assert r["best_lag"] == 0, r
        assert r["dir_acc"] < 0.6, r  # from prices alone, more would mean a leak
        if r["horizon"] <= 5:  # long horizons on one short file are too few to judge alone
            assert abs(r["coverage80"] - 0.80) < 0.05 and abs(r["coverage95"] - 0.95) < 0.03, r


def test_bar_option_aggregates_before_forecasting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = write_csv(tmp_path / "fc_agg.csv", 400)
    assert main([str(csv), "--bar", "5m", "--horizons", "1,2", "--json", "--steps", "0"]) == 0
    rows = json.loads(capsys.readouterr().out)["results"]
    assert {r["bar"] for r in rows} == {"5m"}
    assert rows[0]["n"] == 80 - 29 - 1  # 80 five-minute bars, first forecast at bar 29, 1 ahead
