"""What the chart area says when it cannot simply show a chart: no data, offline, rate limited, ..."""

from __future__ import annotations

from engine.events import StatusEvent, TrainEvent
from tui.format import format_clock


def _next(status: StatusEvent) -> str:
    if status.next_update is None:
        return ""
    return f" Next try at {format_clock(status.next_update, seconds=True)}."


def _msg(status: StatusEvent) -> str:
    m = status.message.strip()
    return (m if m.endswith((".", "!", "?")) else m + ".") if m else ""


def notice_for(
    *,
    mode: str,
    coin: str | None,
    name: str,
    status: StatusEvent | None,
    has_data: bool,
    unknown: bool,
    train: TrainEvent | None = None,
) -> tuple[str, str] | None:
    """(headline, what is happening and what the user can do), or None when the chart says it all.

    With data on screen the notice is shown as a banner above the chart; without, it replaces it.
    """
    if coin is None:
        return ("No coins in the watchlist", "Press a to search for a coin and add it.")
    if unknown:
        return (f"Unknown coin: {coin}",
                "CoinGecko does not know this id. Press x to remove it, or a to search by name.")
    state = status.state if status else "connecting"
    if mode == "REMOTE" and state in ("offline", "error"):
        return ("The remote engine is gone",
                f"{_msg(status) if status else ''} Reconnecting on its own; what was received stays "
                "on screen. Press q to quit.".strip())
    if state == "offline":
        return ("Offline",
                f"{_msg(status) if status else ''}{_next(status) if status else ''} Check the network; "
                "prices already recorded stay on screen.".strip())
    if state == "rate limited":
        return ("Rate limited",
                f"{_msg(status) if status else ''}{_next(status) if status else ''} The app waits and "
                "retries; a CoinGecko Demo key (COINGECKO_API_KEY) raises the limit.".strip())
    if state == "error":
        return ("Data source error", f"{_msg(status) if status else ''} The app keeps retrying.".strip())
    if has_data:
        if state == "done":
            return ("Replay finished", "The recorded data has ended; the chart stays. Press q to quit.")
        return None
    if state == "backfilling" or (status and "backfill" in status.message.lower()):
        return (f"Fetching recent history for {name}",
                f"{_msg(status) if status else ''} The chart appears as soon as it arrives.".strip())
    if train is not None and train.state == "pretraining":
        return (f"Pre-training the model for {name}", "The chart appears with the first prices.")
    if mode == "LIVE":
        when = f" (next poll at {format_clock(status.next_update, seconds=True)})" if (
            status and status.next_update) else ""
        return (f"Waiting for the first prices of {name}",
                f"Live prices arrive once a minute{when}. The chart appears with the first one; "
                "the forecast follows once the model has warmed up.")
    if mode == "REMOTE":
        return (f"Waiting for {name} from the remote engine",
                "The chart appears with the first prices the engine sends.")
    return (f"Waiting for the first prices of {name}",
            "The replay starts in a moment; the chart appears with the first minute.")
