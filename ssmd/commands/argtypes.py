"""Argument types shared by the subcommands (argparse ``type=`` callables with one-line errors)."""

from __future__ import annotations

import argparse
import datetime as dt


def date(value: str) -> dt.date:
    """A ``YYYY-MM-DD`` date."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        msg = f"invalid date {value!r}: use YYYY-MM-DD"
        raise argparse.ArgumentTypeError(msg) from None
