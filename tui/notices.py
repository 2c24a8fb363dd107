"""What the chart area says when it cannot simply show a chart: no data, offline, rate limited, ...

Each state is said in one place. The status bar owns the source's state (ok, offline, rate
limited, error, done) and its message; the chart area speaks only when it has no chart to show
(then it says what to do), or about the selected coin itself (no data for it, or its data stopped).
"""

from __future__ import annotations

from engine.events import StatusEvent, TrainEvent
from tui.format import format_clock, format_time


def _next(status: StatusEvent | None) -> str:
    if status is None or status.next_update is None:
        return ""
    return f"Next try at {format_clock(status.next_update, seconds=True)}. "


def unknown_words(mode: str, source: str) -> str:
    """How the watchlist names a coin the data source has nothing for."""
    if source == "demo" or (mode == "DEMO" and source != "replay"):
        return "no demo data"
    if source == "replay":
        return "no replay data"
    return "unknown coin"


def notice_for(
    *,
    mode: str,
    coin: str | None,
    name: str,
    status: StatusEvent | None,
    has_data: bool,
    unknown: bool,
    train: TrainEvent | None = None,
    stale_since: int | None = None,
    demo_coins: str = "",
) -> tuple[str, str] | None:
    """(headline, what is happening and what the user can do), or None when the chart says it all.

    With data on screen the notice is shown as a banner above the chart; without, it replaces it.
    ``stale_since`` is the minute of the coin's last price when its prices stopped while the
    others' go on; ``demo_coins`` names the coins a demo or replay has data for.
    """
    if coin is None:
        return ("No coins in the watchlist", "Press a to search for a coin and add it.")
    source = status.source if status else ""
    if unknown:
        words = unknown_words(mode, source)
        have = f" It has {demo_coins}." if demo_coins else ""
        if words == "no demo data":
            return (
                f"No demo data for {name}",
                (
                    f"The demo replays recorded minutes of a few coins only.{have} "
                    "Press x to remove it, or a to add one of those."
                ),
            )
        if words == "no replay data":
            return (
                f"No replay data for {name}",
                f"No file was given for it (--replay COIN=FILE.csv).{have} Press x to remove it.",
            )
        return (
            f"Unknown coin: {coin}",
            "CoinGecko does not know this id. Press x to remove it, or a to search by name.",
        )
    state = status.state if status else "connecting"
    if mode == "REMOTE" and state in ("offline", "error"):
        # The whole engine is gone, not just a source: what is on screen is frozen, say so.
        return (
            "The remote engine is gone",
            "Reconnecting on its own; what was received stays on screen. Press q to quit.",
        )
    if has_data:
        if stale_since is not None:
            ended = (
                "Its recorded data ended"
                if mode == "DEMO"
                else "The source sends nothing new for it"
            )
            return (
                f"No new prices for {name} since {format_time(stale_since)}",
                f"{ended}; the other coins go on.",
            )
        # The status bar already says offline, rate limited, error or finished, with the times.
        return None
    if state == "offline":
        return (
            f"No prices for {name} yet: offline",
            f"{_next(status)}Check the network; the chart appears with the first prices.",
        )
    if state == "rate limited":
        return (
            f"No prices for {name} yet: rate limited",
            (
                f"{_next(status)}The app waits and retries; a CoinGecko Demo key "
                "(COINGECKO_API_KEY) raises the limit."
            ),
        )
    if state == "error":
        return (
            f"No prices for {name} yet",
            "The data source failed (see the status bar); the app keeps retrying.",
        )
    if state == "done":
        return (f"No prices for {name}", "The replay has ended without data for it.")
    if state == "backfilling" or (status and "backfill" in status.message.lower()):
        return (f"Fetching recent history for {name}", "The chart appears as soon as it arrives.")
    if train is not None and train.state == "pretraining":
        return (f"Pre-training the model for {name}", "The chart appears with the first prices.")
    if mode == "LIVE":
        when = (
            f" (next poll at {format_clock(status.next_update, seconds=True)})"
            if (status and status.next_update)
            else ""
        )
        return (
            f"Waiting for the first prices of {name}",
            (
                f"Live prices arrive once a minute{when}. The chart appears with the first one; "
                "the forecast follows once the model has warmed up."
            ),
        )
    if mode == "REMOTE":
        return (
            f"Waiting for {name} from the remote engine",
            "The chart appears with the first prices the engine sends.",
        )
    return (
        f"Waiting for the first prices of {name}",
        "The replay starts in a moment; the chart appears with the first minute.",
    )
