"""argparse types shared by the commands: counts and seeds that say why they refuse a value."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def integer_at_least(minimum: int) -> Callable[[str], int]:
    """Return an argparse ``type`` that accepts integers >= ``minimum`` and says why it refuses others."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}")
        return value

    return parse


#: argparse types for counts (>= 1) and seeds (>= 0).
positive_int = integer_at_least(1)
non_negative_int = integer_at_least(0)


def seconds(text: str) -> float:
    """argparse type of a timeout: a finite number of seconds >= 0, 0 meaning no limit."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number of seconds >= 0 (0: no limit)")
    return value
