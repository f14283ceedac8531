"""Gradient-equality checks of every implementation (or a user's function) against a float64 oracle."""
