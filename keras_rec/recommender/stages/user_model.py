"""Stage 2, the user model: the towers (`--user-model mean`) or the sequence model."""

from __future__ import annotations

TITLES = {"mean": "two-tower retrieval", "sequence": "next-item sequence model"}


def train_user_model(config, inputs, run, tracker):
    """`TrainedTowers` (mean) or `TrainedSequence` (sequence), trained under `run.strategy`."""
    from keras_rec.recommender.stages.sequence import train_sequence
    from keras_rec.recommender.stages.towers import train_towers

    train = train_sequence if config.user_model == "sequence" else train_towers
    return train(config, inputs, run, tracker)


def max_epochs(config) -> int:
    """The most epochs the user model may train (validation never chooses more)."""
    return config.sequence_epochs if config.user_model == "sequence" else config.epochs
