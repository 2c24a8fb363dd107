"""cryptotui terminal UI (Textual)."""
