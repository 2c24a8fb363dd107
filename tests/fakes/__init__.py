"""Local stand-ins for the upstream services (CoinGecko HTTP, Kraken WebSocket) used by the tests."""
