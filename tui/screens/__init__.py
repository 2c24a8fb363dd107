"""The app's modal screens: help, add coin, confirm, alerts."""
