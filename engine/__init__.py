"""cryptotui engine: sources, store, forecaster, evaluation and the event stream; headless (no Textual)."""

import warnings

# torch warns on import when numpy is absent; numpy is not needed here, and in the TUI the warning
# would be written over the screen.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
