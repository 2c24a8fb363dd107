"""The ``cryptotui`` command: the TUI, and the ``serve``, ``backtest`` and ``export`` subcommands.

Textual is imported only on the TUI path and torch only inside the engine's model thread, so
``serve``, ``export`` and the first frame stay fast. Bad input ends with one line on stderr and
exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import gc
import logging
import logging.handlers
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, NoReturn

from engine.errors import CryptotuiError
from engine.events import ErrorEvent
from engine.ids import coin_id
from engine.redact import RedactingFilter, register_secret, register_url_secrets, safe_url
from engine.settings.config import (
    LOG_LEVELS,
    SOURCES,
    Settings,
    check_permissions,
    load_config_file,
    parse_horizons,
    settings_from,
    speed_problem,
    url_problem,
    vs_problem,
)
from engine.settings.locations import Locations
from tui.gcpause import collections_paused

PROG = "cryptotui"


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option in one line and exits 2."""

    def error(self, message: str) -> NoReturn:
        fail(f"{message} (see '{self.prog} --help')")


def fail(message: str, status: int = 2) -> NoReturn:
    # Imported here, on the error path only (it loads rich). Messages quote paths, options and
    # file contents: no escape sequence in them may reach the terminal.
    from tui.safe_text import clean

    sys.stderr.write(f"{PROG}: error: {clean(message, 2000)}\n")
    raise SystemExit(status)


def _speed(value: str) -> float:
    try:
        speed = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid speed {value!r}: a number of minutes per second"
        ) from None
    problem = speed_problem(speed)  # the config file's rule, word for word
    if problem:
        raise argparse.ArgumentTypeError(f"invalid speed {value!r}: {problem}")
    return speed


def _vs(value: str) -> str:
    problem = vs_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(f"invalid --vs {value!r}: {problem}")
    return value.strip().lower()


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {value!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {value!r}: must be 0..65535")
    return port


def _checked(fn: Any) -> Any:
    def parse(value: str) -> Any:
        try:
            return fn(value)
        except CryptotuiError as exc:
            raise argparse.ArgumentTypeError(exc.msg) from None

    parse.__name__ = fn.__name__
    return parse


def _replay(value: str) -> tuple[str, Path]:
    coin, sep, path = value.partition("=")
    if not sep or not coin.strip() or not path.strip():
        raise argparse.ArgumentTypeError(f"invalid replay {value!r}: expected COIN=FILE.csv")
    try:
        return coin_id(coin), Path(path.strip())
    except CryptotuiError as exc:
        raise argparse.ArgumentTypeError(exc.msg) from None


# What --coins (or export's --coin) read as something else ("BTC -> bitcoin"), said once: on
# stderr by serve and export, as notifications by the TUI.
_COIN_NOTES: list[str] = []


def _coins(value: str) -> tuple[str, ...]:
    from engine.sources.coins import resolve_coins

    try:
        ids, notes = resolve_coins(value)
    except CryptotuiError as exc:
        raise argparse.ArgumentTypeError(exc.msg) from None
    if not ids:
        raise argparse.ArgumentTypeError("no coins given")
    _COIN_NOTES.extend(n for n in notes if n not in _COIN_NOTES)
    return ids


def _coin(value: str) -> str:
    return _coins(value)[0] if value.strip() and "," not in value else coin_id_or_fail(value)


def coin_id_or_fail(value: str) -> str:
    try:
        return coin_id(value)
    except CryptotuiError as exc:
        raise argparse.ArgumentTypeError(exc.msg) from None


def warn(message: str) -> None:
    """One warning line on stderr (headless commands), foreign text cleaned."""
    from engine.text import clean

    sys.stderr.write(f"{PROG}: warning: {clean(message, 2000)}\n")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--coins",
        type=_coins,
        help="coins by CoinGecko id, symbol or name, comma-separated "
        "(default: bitcoin,ethereum,solana; BTC,eth -> bitcoin,ethereum)",
    )
    p.add_argument("--vs", type=_vs, help="quote currency (default: usd)")
    p.add_argument("--home", help="where config, database and models live (env CRYPTOTUI_HOME)")
    p.add_argument("--api-url", help="CoinGecko base URL (env COINGECKO_API_URL; default by plan)")
    p.add_argument("--source", choices=SOURCES, help="data source (default: coingecko)")
    p.add_argument(
        "--demo", action="store_true", help="replay the bundled real minute data, offline"
    )
    p.add_argument(
        "--replay",
        type=_replay,
        action="append",
        metavar="COIN=FILE.csv",
        help="replay a CSV (timestamp_ms,open,high,low,close,volume) as COIN",
    )
    p.add_argument("--speed", type=_speed, help="replay speed in minutes per second (default: 10)")
    p.add_argument(
        "--horizons",
        type=_checked(parse_horizons),
        help="forecast horizons in minutes (default: 1,5,15,60)",
    )
    p.add_argument(
        "--shared-model",
        action="store_true",
        default=None,
        help="one model learns from every watched coin (default: one per coin)",
    )
    p.add_argument("--kraken-url", help="Kraken WebSocket v2 URL (default: wss://ws.kraken.com/v2)")
    p.add_argument(
        "--log-level", type=str.upper, choices=LOG_LEVELS, help="log detail (default: INFO)"
    )


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="Live crypto prices with an online-learning LSTM forecast, in the terminal.",
        epilog="Subcommands: serve, backtest, export (try 'cryptotui serve --help').",
    )
    _common(p)
    p.add_argument(
        "--connect",
        metavar="URL",
        help="show a remote engine (ws://HOST:8765) instead of running one",
    )
    _token_options(p, "token for --connect (sent as Authorization: Bearer)")
    return p


TOKEN_ENV = "CRYPTOTUI_TOKEN"


def _token_options(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--token",
        help=f"{what}; visible to anyone who can list processes: prefer "
        f"--token-file or the {TOKEN_ENV} environment variable",
    )
    p.add_argument(
        "--token-file",
        metavar="FILE",
        type=Path,
        help=f"read the token from FILE (first line); or set {TOKEN_ENV}",
    )


def resolve_token(args: argparse.Namespace, env: dict[str, str] | None = None) -> str | None:
    """The token from --token, --token-file or CRYPTOTUI_TOKEN (in that order); bad input exits."""
    env = dict(os.environ if env is None else env)
    token: str | None = args.token
    if args.token_file is not None:
        if token is not None:
            fail("give --token or --token-file, not both")
        try:
            text = args.token_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc.__class__.__name__
            fail(f"cannot read --token-file {args.token_file}: {reason}")
        token = text.splitlines()[0].strip() if text.strip() else ""
        if not token:
            fail(f"--token-file {args.token_file} is empty: put the token on its first line")
    elif token is None and env.get(TOKEN_ENV):
        token = env[TOKEN_ENV].strip()
    if token is not None and (not token.strip() or not token.isprintable()):
        # Never echo the value: it is a secret. (A control character would break the header.)
        fail("empty --token or one with control characters: give a non-empty secret")
    return token


def build_serve_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=f"{PROG} serve",
        description="Run the engine headless and feed it to WebSocket clients.",
    )
    _common(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8765, help="port (default: 8765)")
    p.add_argument(
        "--with-holdings",
        action="store_true",
        help="send your holdings to clients in the hello frame; never by default",
    )
    _token_options(p, "required when binding anything but loopback")
    return p


def build_export_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=f"{PROG} export", description="Write a coin's stored prices and predictions as CSV."
    )
    p.add_argument(
        "--coin", required=True, type=_coin, help="CoinGecko id or symbol, e.g. bitcoin or BTC"
    )
    p.add_argument(
        "--out",
        type=Path,
        metavar="FILE.csv",
        help="output file (default: exports/ in the data dir; '-' for stdout)",
    )
    p.add_argument("--home", help="data dir (env CRYPTOTUI_HOME)")
    p.add_argument("--demo", action="store_true", help="export from the demo database")
    p.add_argument(
        "--horizons", type=_checked(parse_horizons), help="horizons to include (default: 1,5,15,60)"
    )
    p.add_argument(
        "--with-holdings",
        action="store_true",
        help="add your holding of the coin (amount, value, P&L per minute); never by default",
    )
    return p


def build_backtest_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=f"{PROG} backtest",
        description="Prequential evaluation of the live forecaster over CSV files of bars, "
        "beside the persistence, drift and simple-band baselines.",
    )
    p.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE.csv",
        help="bar files: timestamp_ms,open,high,low,close,volume (header optional)",
    )
    p.add_argument("--horizons", default="1,5,15,60", help="bars ahead, e.g. 1,5,15,60 (default)")
    p.add_argument(
        "--bar",
        default="auto",
        metavar="1m|5m|15m|1h",
        help="bar size to resample to (default: the file's own spacing)",
    )
    p.add_argument("--shared-model", action="store_true", help="also run one model for all files")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--seed", type=int, default=0, help="random seed of the models (default: 0)")
    p.add_argument("--steps", type=int, default=None, help="gradient steps per bar (default: live)")
    p.add_argument(
        "--predictions",
        type=Path,
        metavar="OUT.csv",
        help="write every scored prediction (served band, mean and the network's own mean) as CSV",
    )
    p.add_argument("--wide", action="store_true", help="per-file table with every column")
    p.add_argument(
        "--portfolio",
        action="store_true",
        help="also score the total's 80%% range and level probabilities (aligned files)",
    )
    p.add_argument(
        "--weights", metavar="A,B", help="--portfolio: value held per file (default 1 each)"
    )
    return p


def make_settings(args: argparse.Namespace, loc: Locations) -> Settings:
    file_values = load_config_file(loc.config_file)
    replay = dict(args.replay or [])
    source = args.source
    if replay and source is None:
        source = "replay"
    if source == "replay" and not replay and not args.demo:
        raise CryptotuiError("--source replay needs at least one --replay COIN=FILE.csv")
    _check_url(args.kraken_url, "--kraken-url", "ws")
    # The environment's URL gets the same check as the option (it was once taken as it came:
    # file:///etc/passwd reached requests).
    env_url = os.environ.get("COINGECKO_API_URL") or None
    _check_url(args.api_url, "--api-url", "http")
    if not args.api_url:
        _check_url(env_url, "COINGECKO_API_URL", "http")
    coins = args.coins
    if replay and coins is None:
        coins = tuple(replay)
    settings = settings_from(
        file_values,
        coins=coins,
        vs=args.vs,
        api_url=args.api_url,
        source=source,
        demo=True if args.demo else None,
        speed=args.speed,
        horizons=args.horizons,
        log_level=args.log_level,
        shared_model=args.shared_model,
        kraken_url=args.kraken_url,
        connect=getattr(args, "connect", None),
        token=getattr(args, "token", None),
    )
    if replay:
        from dataclasses import replace

        for path in replay.values():
            if not path.is_file():
                raise CryptotuiError(f"replay file not found: {path}")
        settings = replace(
            settings, replay_files=tuple(replay.values()), replay_coins=tuple(replay)
        )
    return settings


def _check_url(url: str | None, label: str, kind: str) -> None:
    """One clear line for a URL the sources cannot use; the password of one is never echoed."""
    problem = url_problem(url, kind) if url else None
    if problem:
        raise CryptotuiError(f"invalid {label} {safe_url(url or '')!r}: {problem}")


def setup_logging(loc: Locations, settings: Settings, *, stderr: bool) -> None:
    root = logging.getLogger()
    root.setLevel(settings.log_level)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    register_secret(settings.api_key)
    register_secret(settings.token)
    register_url_secrets(settings.api_url)
    register_url_secrets(settings.kraken_url)
    redact = RedactingFilter()
    handlers: list[logging.Handler] = []
    try:
        handlers.append(
            logging.handlers.RotatingFileHandler(
                loc.log_file, maxBytes=2_000_000, backupCount=2, encoding="utf-8"
            )
        )
    except OSError:
        pass
    if stderr:
        handlers.append(logging.StreamHandler(sys.stderr))
    for h in handlers:
        h.setFormatter(fmt)
        h.addFilter(redact)
        root.addHandler(h)


def _log_to_file(loc: Locations) -> None:
    """The log goes to the data dir's log file (never the terminal: what the user must know is
    said on stderr in one line); without a writable data dir, nowhere."""
    handler: logging.Handler
    try:
        handler = logging.handlers.RotatingFileHandler(
            loc.log_file, maxBytes=2_000_000, backupCount=2, encoding="utf-8"
        )
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(RedactingFilter())
    except OSError:
        handler = logging.NullHandler()
    logging.getLogger().addHandler(handler)


def log_to_stderr() -> None:
    """Also log to stderr (serve), once start-up checks have passed and errors are one line."""
    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    h.addFilter(RedactingFilter())
    logging.getLogger().addHandler(h)


def _open(args: argparse.Namespace, *, headless: bool) -> tuple[Locations, Settings]:
    try:
        loc = Locations.resolve(args.home)
        loc.ensure()
        settings = make_settings(args, loc)
    except CryptotuiError as exc:
        fail(exc.msg)
    setup_logging(loc, settings, stderr=False)
    for note in _COIN_NOTES:
        if headless:
            warn(note)
        else:
            _NOTICES.append(ErrorEvent("Coins", note))
    warning = check_permissions(loc.config_file)
    if warning:
        logging.getLogger(PROG).warning("%s", warning)
        if headless:
            from tui.safe_text import clean  # as in fail()

            sys.stderr.write(f"{PROG}: warning: {clean(warning, 2000)}\n")
        else:
            _NOTICES.append(ErrorEvent("Config file", warning))
    return loc, settings


# Warnings found before the UI exists, shown by it as notifications once it runs.
_NOTICES: list[ErrorEvent] = []


def run_tui(argv: list[str]) -> int:
    _COIN_NOTES.clear()
    args = build_parser().parse_args(argv)
    args.token = resolve_token(args)
    # Start-up allocates a few hundred thousand objects that live as long as the app (Textual,
    # Rich, the store's history): no cyclic collections while they are made, and then they are
    # moved out of the collector's sight. A full collection over them took about 20 ms of the
    # first frame; the young collections meanwhile a few ms more. (The app freezes again once
    # the engine has started.)
    with collections_paused():
        engine, app = _make_app(args)
        gc.freeze()
    try:
        app.run()
    finally:
        engine.stop()
    return int(app.return_code or 0)


def _make_app(args: argparse.Namespace) -> tuple[Any, Any]:
    """The engine (local or remote) and the app on it; bad input exits with a one-line error."""
    if args.connect:
        problem = url_problem(args.connect, "ws")
        if problem:
            fail(f"invalid --connect URL {safe_url(args.connect)!r}: {problem}")
        loc = Locations.resolve(args.home)
        from engine.feed.remote import RemoteEngine

        # The viewer's exports go to its own --home (or the default data dir), like a local app's.
        engine: Any = RemoteEngine(args.connect, token=args.token, export_dir=loc.exports_dir)
        state_path = loc.data_dir / "ui-remote.json" if _writable(loc) else None
    else:
        loc, settings = _open(args, headless=False)
        from engine.runtime.engine import Engine

        try:
            engine = Engine(settings, loc)
        except CryptotuiError as exc:
            fail(exc.msg)
        for notice in _NOTICES:
            engine.add_notice(notice)
        state_path = loc.ui_file(settings.world)
    from tui.app import CryptoApp

    return engine, CryptoApp(engine, state_path=state_path)


def _writable(loc: Locations) -> bool:
    try:
        loc.ensure()
        return True
    except CryptotuiError:
        return False


def run_serve(argv: list[str]) -> int:
    _COIN_NOTES.clear()
    args = build_serve_parser().parse_args(argv)
    args.token = resolve_token(args)
    from engine.feed.server import is_loopback, serve_forever

    if not is_loopback(args.host) and not args.token:
        fail(f"binding {args.host} exposes the feed beyond this machine: give --token")
    loc, settings = _open(args, headless=True)
    from engine.runtime.engine import Engine

    try:
        engine = Engine(settings, loc)
    except CryptotuiError as exc:
        fail(exc.msg)
    options: dict[str, Any] = {}
    if args.with_holdings:
        from engine.settings.holdings import holdings_path, load_holdings

        problems: list[str] = []
        options["holdings"] = load_holdings(holdings_path(loc.ui_file(settings.world)), problems)
        for line in problems:
            warn(line)  # one line each (before the log also goes to stderr)
    log_to_stderr()
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        serve_forever(engine, args.host, args.port, args.token, stop_event=stop, **options)
    except CryptotuiError as exc:
        fail(exc.msg, 1)
    except OSError as exc:
        fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", 1)
    finally:
        engine.stop()
    return 0


def run_export(argv: list[str]) -> int:
    _COIN_NOTES.clear()
    args = build_export_parser().parse_args(argv)
    from engine.runtime.export import export_csv, export_path, write_csv
    from engine.store import Store

    for note in _COIN_NOTES:
        warn(note)
    to_stdout = args.out is not None and str(args.out) == "-"
    if args.out is not None and not to_stdout and not args.out.parent.is_dir():
        fail(f"--out: no such directory: {args.out.parent}")
    loc = Locations.resolve(args.home)
    _log_to_file(loc)
    db = loc.database(args.demo)
    if not db.exists():
        fail(f"no database at {db}: run cryptotui first")
    horizons = args.horizons or Settings().horizons
    hfile = None
    holding = None
    if args.with_holdings:
        from engine.settings.holdings import holdings_path, load_holdings

        hfile = holdings_path(loc.ui_file(args.demo))
        problems: list[str] = []
        holding = load_holdings(hfile, problems).get(args.coin)
        for line in problems:
            warn(line)
        if holding is None:
            fail(f"no holding of {args.coin!r} in {hfile}: enter one in the app (key H) first")
    if args.out is not None and not to_stdout:
        # The output must never be one of the inputs (or the database's journal files).
        inputs = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
        clash = same_file(args.out, [*inputs, *([hfile] if hfile else [])])
        if clash is not None:
            fail(f"--out {args.out} is {clash}, an input of this export: choose another file")
    try:
        # Read-only: an export writes nothing to the database, so it works on a full disk.
        store = Store(db, readonly=True)
    except CryptotuiError as exc:
        fail(exc.msg)
    try:
        if not store.has_bars(args.coin):
            known = ", ".join(store.coins()) or "none"
            fail(f"no data for {args.coin!r} in {db} (coins stored: {known})")
        if to_stdout:
            return _export_to_stdout(store, args.coin, horizons, holding, write_csv)
        out = args.out
        if out is None:
            loc.exports_dir.mkdir(parents=True, exist_ok=True)
            out = export_path(loc.exports_dir, args.coin, "demo" if args.demo else "")
        try:
            path = export_csv(store, args.coin, out, horizons, holding)
        except OSError:
            if args.out is None:
                out.unlink(missing_ok=True)  # the empty file export_path made
            raise
    except CryptotuiError as exc:
        fail(exc.msg)
    except OSError as exc:
        fail(f"cannot write {args.out or loc.exports_dir}: {exc.strerror or exc}", 1)
    finally:
        store.close()
    sys.stdout.write(f"{path}\n")
    return 0


def _export_to_stdout(store: Any, coin: str, horizons: Any, holding: Any, write_csv: Any) -> int:
    """``export --out -``: a reader that stops early (``| head``) is no error: exit 0, quietly."""
    try:
        write_csv(store, coin, sys.stdout, horizons, holding)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python would report the broken pipe again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return 0


def same_file(path: Path, inputs: list[Path]) -> Path | None:
    """The input that ``path`` is, or resolves to (a symlink, ``..``, a hard link), else None."""
    try:
        target = path.resolve()
    except (OSError, RuntimeError):
        return None
    for item in inputs:
        try:
            if target == item.resolve():
                return item
            if path.exists() and item.exists() and os.path.samefile(path, item):
                return item
        except (OSError, RuntimeError):
            continue
    return None


def run_backtest(argv: list[str]) -> int:
    args = build_backtest_parser().parse_args(argv)
    from engine.forecast.backtest import Options, run

    opts = Options(
        files=tuple(args.files),
        horizons=args.horizons,
        bar=args.bar,
        shared_model=args.shared_model,
        json=args.json,
        seed=args.seed,
        steps=args.steps,
        predictions=args.predictions,
        wide=args.wide,
        portfolio=args.portfolio,
        weights=args.weights,
    )
    if args.predictions is not None:
        # The predictions file replaces whatever has its name: never one of the inputs.
        clash = same_file(args.predictions, list(args.files))
        if clash is not None:
            fail(f"--predictions {args.predictions} is the input {clash}: choose another file")
    try:
        return run(opts)
    except CryptotuiError as exc:
        fail(exc.msg)
    except OSError as exc:
        # Writing the predictions failed part way (a full disk): one line, not a traceback.
        where = f"--predictions {args.predictions}" if args.predictions else "the output"
        fail(f"cannot write {where}: {exc.strerror or exc.__class__.__name__}", 1)


COMMANDS = {"serve": run_serve, "backtest": run_backtest, "export": run_export}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = COMMANDS.get(argv[0]) if argv else None
    try:
        if command is not None:
            return command(argv[1:])
        return run_tui(argv)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
