"""Scoring: pure functions of numbers. No I/O, no clocks. See docs/scoring.md."""
