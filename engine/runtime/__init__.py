"""The runtime: wires sources -> store and windows -> forecasters -> events, on its threads."""
