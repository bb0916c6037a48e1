"""The floating-point precisions an encoder runs in: torch, OpenVINO and the TF Hub export."""

from __future__ import annotations

# The first is the default (exact).
PRECISIONS = ("float32", "bfloat16")
# Tolerance (absolute and relative) of the serving check that compares a model's
# answers in memory with TF Serving's loader path, by encoder precision. Float32
# agrees to rounding. Bfloat16 kernels differ between the two paths on CPUs with
# native bfloat16 (AVX512_BF16, AMX: oneDNN fuses differently in a tf.function and
# in a Session), by up to a few bfloat16 roundings (measured 0.0007 on MiniLM's
# normalized embeddings, 0.01 on its hidden states).
SERVING_TOLERANCE = {"float32": 1e-5, "bfloat16": 2e-2}


def check_precision(precision: str) -> str:
    """Returns `precision`, or raises a `ValueError` naming the allowed ones."""
    if precision not in PRECISIONS:
        raise ValueError(
            f"`precision` must be one of {PRECISIONS}. Received: precision={precision!r}"
        )
    return precision
