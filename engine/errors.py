"""The project's exceptions: each carries a short ``title`` and a one-line ``msg`` for the user.

CryptotuiError
 ├── ConfigError          bad option, bad config file (names the file, line and key)
 ├── StoreError           database unusable (names the file; never replaced silently)
 ├── ModelError           checkpoint unreadable or incompatible (set aside, model starts fresh)
 └── SourceError          anything a data source met; third-party exceptions end here
      ├── NetworkError    connection refused/reset, timeout, DNS
      ├── RateLimited     HTTP 429; ``retry_after`` seconds when the server said
      ├── ApiError        an error status or body from the API (``code`` if it gave one)
      └── ParseError      a body that is not what the API documents (HTML, truncated JSON)
"""

from __future__ import annotations


class CryptotuiError(Exception):
    title = "Error"

    def __init__(self, msg: str, *, title: str | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        if title is not None:
            self.title = title

    def __str__(self) -> str:
        return self.msg


class ConfigError(CryptotuiError):
    title = "Configuration"


class StoreError(CryptotuiError):
    title = "Database"


class ModelError(CryptotuiError):
    title = "Model"


class ModelConfigChanged(ModelError):
    """A sound checkpoint of another model configuration (window, width, horizons, bar): typically
    saved by an earlier version. Not damage: the model retrains from the stored history."""


class SourceError(CryptotuiError):
    title = "Data source"


class NetworkError(SourceError):
    title = "Network"


class RateLimited(SourceError):
    title = "Rate limited"

    def __init__(self, msg: str, *, retry_after: float | None = None) -> None:
        super().__init__(msg)
        self.retry_after = retry_after


class ApiError(SourceError):
    title = "API error"

    def __init__(self, msg: str, *, status: int | None = None, code: int | None = None) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code


class ParseError(SourceError):
    title = "Bad response"
