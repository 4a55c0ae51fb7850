"""Faust tables holding per-ticker state: order books, gap counters, windowed activity counts."""
