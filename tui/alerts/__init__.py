"""Alerts: the rules, the controller that runs and delivers them, and their dialog."""
