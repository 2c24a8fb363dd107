"""SQLite store: minute bars and every prediction made, in small WAL transactions.

One connection, guarded by a lock, shared by the engine's threads (each call is one short
transaction, so a kill -9 loses at most the write in flight). A file that is not a database, or one
written by a newer version, raises ``StoreError`` naming the file: it is never replaced silently.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.errors import StoreError
from engine.events import Bar, ForecastEvent, bars_from_rows

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2

# A row of predictions_rows: made_ts, horizon, target_ts, base_price, mean, lo80, hi80, lo95, hi95,
# outcome, raw (the bands, the outcome and raw are NULL until known or when not recorded).
PredictionRow = tuple[
    int,
    int,
    int,
    float,
    float,
    float | None,
    float | None,
    float | None,
    float | None,
    float | None,
    float | None,
]

PREDICTIONS_ABOUT = (
    "SELECT made_ts, horizon, target_ts, base_price, mean, lo80, hi80, lo95, hi95, outcome, raw "
    "FROM predictions INDEXED BY predictions_target "
    "WHERE coin=? AND target_ts BETWEEN ? AND ? ORDER BY made_ts, horizon"
)

# Each entry upgrades the schema from version i to i + 1; never edit one that has shipped.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE IF NOT EXISTS bars (
        coin TEXT NOT NULL,
        ts INTEGER NOT NULL,            -- minute open time, Unix seconds
        price REAL NOT NULL,
        open REAL, high REAL, low REAL, volume REAL,
        source TEXT NOT NULL DEFAULT '',
        filled INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (coin, ts)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS predictions (
        coin TEXT NOT NULL,
        made_ts INTEGER NOT NULL,       -- minute the forecast was made at
        horizon INTEGER NOT NULL,       -- minutes ahead
        target_ts INTEGER NOT NULL,     -- minute the forecast is about
        base_price REAL NOT NULL,
        mean REAL NOT NULL,             -- predicted cumulative log return
        lo80 REAL, hi80 REAL, lo95 REAL, hi95 REAL,
        outcome REAL,                   -- realised log return, once the target minute arrived
        PRIMARY KEY (coin, made_ts, horizon)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS predictions_target ON predictions (coin, target_ts);
    """,
    # 2: the network's own mean beside the one served (the served mean may be "no change").
    """
    ALTER TABLE predictions ADD COLUMN raw REAL;
    """,
]


def _ln(x: float | None) -> float | None:
    if x is None or not x > 0:
        return None
    return math.log(x)


def _is_damage(exc: sqlite3.Error) -> bool:
    # SQLITE_CORRUPT and SQLITE_NOTADB surface as the DatabaseError base class itself; its
    # subclasses (OperationalError: locked, busy, disk full...) are not damage.
    return type(exc) is sqlite3.DatabaseError or "malformed" in str(exc)


def damaged_message(path: Path, exc: sqlite3.Error) -> str:
    """One line for a damaged database: which file, that it was left alone, and what to do."""
    return (
        f"database {path} is damaged ({exc}); it was left untouched: move it away (out of the "
        f"data dir {path.parent}) to start fresh, or rescue what it holds with "
        f"'sqlite3 {path} .recover | sqlite3 recovered.sqlite3'"
    )


class Store:
    """Bars and predictions of every coin, in one SQLite file.

    ``readonly=True`` opens it for reading only (export): nothing is written, not even the
    schema check, so it works on a full disk or a read-only data dir.
    """

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.Lock()
        try:
            if readonly:
                self._db = _connect_readonly(self.path)
            else:
                self._db = sqlite3.connect(
                    str(self.path), timeout=10.0, check_same_thread=False, isolation_level=None
                )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from None
        if readonly:
            try:
                self._db.create_function("ln", 1, _ln, deterministic=True)
                version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"database {self.path} has schema version {version}, newer than this "
                        f"cryptotui understands ({SCHEMA_VERSION}); upgrade cryptotui"
                    )
            except StoreError:
                self._db.close()
                raise
            except sqlite3.DatabaseError as exc:
                self._db.close()
                raise self._unusable(exc) from None
            return
        try:
            self._db.create_function("ln", 1, _ln, deterministic=True)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable against process crashes (kill -9) in WAL mode; only an OS crash
            # or power loss could lose the last transactions.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._migrate()
            self._probe_write()
        except StoreError:
            self._db.close()
            raise
        except sqlite3.DatabaseError as exc:
            self._db.close()
            if _is_damage(exc) and "malformed" in str(exc):
                raise StoreError(damaged_message(self.path, exc)) from None
            raise StoreError(
                f"database {self.path} is unreadable ({exc}); it was left untouched - "
                "move it away to start fresh"
            ) from None

    def _unusable(self, exc: sqlite3.DatabaseError) -> StoreError:
        if _is_damage(exc):
            return StoreError(damaged_message(self.path, exc))
        return StoreError(f"cannot read {self.path}: {exc}")

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The connection under the lock, for reads; a damaged page becomes a one-line StoreError
        (it is found only when a query reaches it, not when the file opens)."""
        with self._lock:
            try:
                yield self._db
            except sqlite3.DatabaseError as exc:
                raise self._unusable(exc) from None

    def _probe_write(self) -> None:
        # A read-only file (or dir) opens and reads fine and only fails at the first write, which
        # would lose every bar quietly; rewriting the header's version finds out now.
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(f"PRAGMA user_version={version}")
            self._db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise StoreError(
                f"database {self.path} cannot be written ({exc}); check the permissions of the "
                "file and its folder"
            ) from None

    def _migrate(self) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"database {self.path} has schema version {version}, newer than this cryptotui "
                f"understands ({SCHEMA_VERSION}); upgrade cryptotui"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            script = MIGRATIONS[target - 1]
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for statement in filter(str.strip, script.split(";")):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={target}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            log.info("database %s migrated to schema %d", self.path, target)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One write transaction under the lock; a failed write becomes a StoreError that says why.

        SQLite rolls a transaction back by itself on some errors (a full disk among them), so an
        unconditional ROLLBACK would raise "no transaction is active" and hide the real reason.
        """
        with self._lock:
            try:
                self._db.execute("BEGIN")
                yield self._db
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if _is_damage(exc):
                    raise StoreError(damaged_message(self.path, exc)) from None
                hint = ""
                if any(w in str(exc) for w in ("disk", "full", "readonly")):
                    hint = " (is the disk full, or the data dir read-only?)"
                raise StoreError(f"cannot {what} in {self.path}: {exc}{hint}") from None
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    # Bars ----------------------------------------------------------------------------------------
    def add_bars(self, bars: Iterable[Bar]) -> int:
        """Insert bars; a re-delivered minute is ignored, except that a real bar replaces a filled one.

        Returns how many rows were inserted or upgraded.
        """
        rows = [
            (b.coin, b.ts, b.price, b.open, b.high, b.low, b.volume, b.source, int(b.filled))
            for b in bars
        ]
        if not rows:
            return 0
        with self._write("store bars") as db:
            before = db.total_changes
            db.executemany(
                "INSERT INTO bars VALUES (?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (coin, ts) DO UPDATE SET price=excluded.price, open=excluded.open, "
                "high=excluded.high, low=excluded.low, volume=excluded.volume, "
                "source=excluded.source, filled=0 "
                "WHERE bars.filled=1 AND excluded.filled=0",
                rows,
            )
            changed = db.total_changes - before
        return changed

    def bars(self, coin: str, since: int | None = None, limit: int | None = None) -> list[Bar]:
        """Bars of ``coin`` in time order: those at or after ``since``, or the newest ``limit``."""
        sql = (
            "SELECT coin, ts, price, open, high, low, volume, source, filled FROM bars WHERE coin=?"
        )
        args: list[object] = [coin]
        if since is not None:
            sql += " AND ts>=?"
            args.append(since)
        if limit is not None:
            sql = f"SELECT * FROM ({sql} ORDER BY ts DESC LIMIT ?) ORDER BY ts"
            args.append(limit)
        else:
            sql += " ORDER BY ts"
        with self._reading() as db:
            rows = db.execute(sql, args).fetchall()
        return bars_from_rows(rows)

    def bars_page(self, coin: str, after: int | None, limit: int) -> list[Bar]:
        """At most ``limit`` bars of ``coin`` after minute ``after`` (from the first with None), in
        time order: one short read at a time, so a long export never holds the lock for long."""
        sql = (
            "SELECT coin, ts, price, open, high, low, volume, source, filled FROM bars "
            "WHERE coin=? AND ts>? ORDER BY ts LIMIT ?"
        )
        with self._reading() as db:
            rows = db.execute(sql, (coin, -(2**62) if after is None else after, limit)).fetchall()
        return bars_from_rows(rows)

    def predictions_about(self, coin: str, first: int, last: int) -> list[PredictionRow]:
        """Prediction rows (as ``predictions_rows``) whose target minute is in ``first..last``,
        ordered by the minute they were made at."""
        # INDEXED BY: to avoid sorting, SQLite's planner would rather walk the primary key (every
        # prediction of the coin) for each page of an export: quadratic, 1 M minutes took minutes.
        with self._reading() as db:
            return db.execute(PREDICTIONS_ABOUT, (coin, first, last)).fetchall()

    def last_ts(self, coin: str) -> int | None:
        with self._reading() as db:
            row = db.execute("SELECT MAX(ts) FROM bars WHERE coin=?", (coin,)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def coins(self) -> list[str]:
        with self._reading() as db:
            return [r[0] for r in db.execute("SELECT DISTINCT coin FROM bars ORDER BY coin")]

    def has_bars(self, coin: str) -> bool:
        """Whether any bar of ``coin`` is stored (one index probe, whatever the count)."""
        with self._reading() as db:
            return (
                db.execute("SELECT 1 FROM bars WHERE coin=? LIMIT 1", (coin,)).fetchone()
                is not None
            )

    def count_bars(self, coin: str | None = None) -> int:
        with self._reading() as db:
            if coin is None:
                return int(db.execute("SELECT COUNT(*) FROM bars").fetchone()[0])
            return int(db.execute("SELECT COUNT(*) FROM bars WHERE coin=?", (coin,)).fetchone()[0])

    # Predictions ---------------------------------------------------------------------------------
    def add_forecast(self, fc: ForecastEvent) -> None:
        """Keep every horizon of a forecast, with the minute it is about."""

        def band(values: tuple[float, ...], i: int) -> float | None:
            return values[i] if i < len(values) else None

        rows = [
            (
                fc.coin,
                fc.ts,
                h,
                fc.ts + 60 * h,
                fc.price,
                fc.mean[i],
                band(fc.lo80, i),
                band(fc.hi80, i),
                band(fc.lo95, i),
                band(fc.hi95, i),
                band(fc.raw, i),
            )
            for i, h in enumerate(fc.horizons)
        ]
        with self._write("store a forecast") as db:
            db.executemany(
                "INSERT OR REPLACE INTO predictions "
                "(coin, made_ts, horizon, target_ts, base_price, mean, lo80, hi80, lo95, hi95, raw) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )

    def record_outcome(self, bar: Bar) -> int:
        """Fill in the realised log return of every prediction about ``bar``'s minute."""
        if bar.filled:
            return 0
        with self._write("record an outcome") as db:
            cur = db.execute(
                "UPDATE predictions SET outcome = ln(? / base_price) "
                "WHERE coin=? AND target_ts=? AND outcome IS NULL",
                (bar.price, bar.coin, bar.ts),
            )
            changed = int(cur.rowcount)
        return changed

    def forecasts(self, coin: str, since: int | None = None) -> list[ForecastEvent]:
        """Stored forecasts of ``coin`` (made at or after ``since``), rebuilt as events, oldest first."""
        sql = (
            "SELECT made_ts, horizon, base_price, mean, lo80, hi80, lo95, hi95, raw FROM predictions "
            "WHERE coin=?"
        )
        args: list[object] = [coin]
        if since is not None:
            sql += " AND made_ts>=?"
            args.append(since)
        sql += " ORDER BY made_ts, horizon"
        with self._reading() as db:
            rows = db.execute(sql, args).fetchall()
        out: list[ForecastEvent] = []
        group: list[tuple[Any, ...]] = []  # the rows of one made_ts, in the SELECT's columns

        def flush() -> None:
            if not group:
                return
            cols = list(zip(*group))
            lo80, hi80, lo95, hi95 = (
                tuple(float("nan") if v is None else v for v in col) for col in cols[4:8]
            )
            # Forecasts stored before schema 2 (or made without a network) have no raw mean.
            raw = (
                ()
                if all(v is None for v in cols[8])
                else tuple(float("nan") if v is None else v for v in cols[8])
            )
            out.append(
                ForecastEvent(
                    coin,
                    int(group[0][0]),
                    float(group[0][2]),
                    tuple(int(h) for h in cols[1]),
                    tuple(float(m) for m in cols[3]),
                    lo80,
                    hi80,
                    lo95,
                    hi95,
                    raw,
                )
            )

        for row in rows:
            if group and row[0] != group[0][0]:
                flush()
                group = []
            group.append(row)
        flush()
        return out

    def predictions_rows(self, coin: str) -> list[PredictionRow]:
        """Prediction rows for export: made_ts, horizon, target_ts, base, mean, bands, outcome, raw."""
        with self._reading() as db:
            return db.execute(
                "SELECT made_ts, horizon, target_ts, base_price, mean, lo80, hi80, lo95, hi95, outcome, "
                "raw "
                "FROM predictions WHERE coin=? ORDER BY made_ts, horizon",
                (coin,),
            ).fetchall()

    def delete_coin(self, coin: str, *, predictions_only: bool = False) -> None:
        with self._write(f"delete {coin}") as db:
            db.execute("DELETE FROM predictions WHERE coin=?", (coin,))
            if not predictions_only:
                db.execute("DELETE FROM bars WHERE coin=?", (coin,))

    def drop_after(self, ts: int) -> tuple[int, int]:
        """Delete bars and predictions stamped after ``ts`` (a clock that lied); (bars, predictions)."""
        with self._write("drop rows from the future") as db:
            bars = db.execute("DELETE FROM bars WHERE ts>?", (ts,)).rowcount
            preds = db.execute("DELETE FROM predictions WHERE made_ts>?", (ts,)).rowcount
        return int(bars), int(preds)

    def integrity_ok(self) -> bool:
        with self._lock:
            try:
                return self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            except sqlite3.DatabaseError:
                return False


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection that writes nothing at all, not even a ``-wal`` or ``-shm`` file.

    Without a ``-wal`` file the main file holds every transaction (the app checkpoints on close,
    and a running instance always has one), so ``immutable=1`` reads it with no locks and no WAL
    index. With one, ``mode=ro`` reads the WAL too; it needs the WAL index (``-shm``), and if that
    cannot be made (a full disk, a read-only dir) the main file is read as it is.
    """
    if not path.is_file():
        raise sqlite3.OperationalError("no such file")
    uri = path.resolve().as_uri()
    options: dict[str, Any] = {"uri": True, "check_same_thread": False, "isolation_level": None}
    if path.with_name(path.name + "-wal").exists():
        db = sqlite3.connect(f"{uri}?mode=ro", timeout=10.0, **options)
        try:
            db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.OperationalError as exc:
            db.close()
            log.info("read-only open of %s failed (%s); reading the main file as it is", path, exc)
    return sqlite3.connect(f"{uri}?immutable=1", **options)
