"""Data sources: each turns some upstream (an API, a socket, a CSV) into minute bars."""
