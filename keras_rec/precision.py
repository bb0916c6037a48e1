"""The floating-point precisions an encoder runs in: torch, OpenVINO and the TF Hub export."""

from __future__ import annotations

# The first is the default (exact).
PRECISIONS = ("float32", "bfloat16")


def check_precision(precision: str) -> str:
    """Returns `precision`, or raises a `ValueError` naming the allowed ones."""
    if precision not in PRECISIONS:
        raise ValueError(
            f"`precision` must be one of {PRECISIONS}. Received: precision={precision!r}"
        )
    return precision
