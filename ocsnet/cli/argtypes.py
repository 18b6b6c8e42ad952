"""Argument types the sub-commands share: each names its flag and the allowed range in its error."""

from __future__ import annotations

import argparse


def int_at_least(name: str, lo: int):
    """An argparse type: an integer >= ``lo``; otherwise an error naming ``name`` and the range."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}: expected an integer, got {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"{name}: {v} is out of range, allowed [{lo}, inf)")
        return v
    return parse
