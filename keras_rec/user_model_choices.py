"""The user-model settings shared by the config (flags) and the models, without importing Keras."""

from __future__ import annotations

# How a user becomes a query (`--user-model`).
USER_MODELS = ("mean", "sequence")
# The sequence model's training losses (`--sequence-loss`, besides "auto").
SEQUENCE_LOSSES = ("softmax", "sampled_softmax")
# "auto" trains the full softmax over the catalogue up to this many items.
FULL_SOFTMAX_MAX_ITEMS = 20_000
