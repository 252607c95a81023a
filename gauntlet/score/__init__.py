"""Scoring: pure functions of numbers. No I/O, no clocks."""
