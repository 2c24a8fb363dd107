"""cryptotui engine: sources, store, forecaster, evaluation and the event stream; headless (no Textual)."""
