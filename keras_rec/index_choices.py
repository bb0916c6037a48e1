"""The names a served item index is chosen by (flags, configs, layers): no TensorFlow import."""

from __future__ import annotations

# `--index` choices; "auto" is IVF from AUTO_IVF_MIN_ITEMS items on.
INDEX_TYPES = ("exact", "ivf", "auto")
# Brute force over 100k x 128-d takes ~3.5 ms a query on 2 cores; IVF pays off beyond.
AUTO_IVF_MIN_ITEMS = 100_000
# How IVF stores the item vectors (scores are float32 either way); the first is the default.
STORAGES = ("float32", "bfloat16", "int8")
# Overlap of the IVF top-K with the exact top-K that `nprobe` must reach.
DEFAULT_TARGET_RECALL = 0.99
