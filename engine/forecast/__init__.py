"""Forecasting: model, features, per-coin forecaster, scoring, backtest, portfolio (torch here)."""
