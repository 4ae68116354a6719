"""charrnn: a character-level LSTM text generator (engine package)."""

__version__ = "0.1.0"
