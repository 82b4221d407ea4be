"""Cutting text to a bound, so that no input, however large, makes a large reply or log line."""

from __future__ import annotations


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, saying how many were left out."""
    if len(text) <= limit:
        return text
    keep = max(0, limit - len(f"...[{len(text)} more]"))
    return text[:keep] + f"...[{len(text) - keep} more]"
