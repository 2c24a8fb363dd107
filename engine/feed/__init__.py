"""The WebSocket feed: the server that publishes an engine, and the remote engine that reads one."""
