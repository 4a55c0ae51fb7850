"""From Kalshi frames to ssmd records: parsing (current and legacy formats), order books, sequence gaps.

Pure logic with no I/O: the normalizer agent feeds it raw frames and persists its state in Faust tables.
"""
