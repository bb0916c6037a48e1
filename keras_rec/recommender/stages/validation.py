"""Stage 3, validation and refit: the towers' figures on validation, the epochs chosen
there, and the towers retrained on training + validation for that many epochs."""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_rec.recommender.stages.towers import TrainedTowers, fit_retrieval


def validation_report(
    inputs, towers: TrainedTowers, vectors, eval_users: int | None, seed: int, max_epochs: int
) -> dict:
    """`{"pairs", "retrieval", "chosen_epochs"}` of the towers on the validation pairs.

    Args:
        inputs: `RecommenderInputs` with validation pairs.
        towers: the towers trained on the training pairs.
        vectors: their `(user vectors, item vectors)`.
        eval_users: evaluate a seeded sample of this many validation users
            (None: all of them).
        seed: the sample's seed.
        max_epochs: the epochs asked for: the choice never exceeds them.
    """
    from keras_rec.recommender.data.recommender_inputs import validation_view
    from keras_rec.recommender.evaluation.retrieval_evaluation import (
        evaluate_retrieval,
        evaluation_users,
        vector_scores,
    )

    history = towers.history
    # Epoch numbers of the logged losses: a resumed run logs from its resumed epoch on.
    losses = history.history.get("val_loss")
    first = history.resumed_at[0] if history.resumed_at else 0
    chosen = first + int(np.argmin(losses)) + 1 if losses else max_epochs
    view = validation_view(inputs)
    users = evaluation_users(view, eval_users, seed)
    return {
        "pairs": int(len(inputs.val_items)),
        "retrieval": evaluate_retrieval(vector_scores(*vectors), view, users=users),
        "chosen_epochs": min(chosen, max_epochs),
    }


def refit_towers(config, inputs, towers: TrainedTowers, epochs: int, run):
    """`(inputs with validation merged into training, refit towers)`.

    The refit towers train `epochs` epochs from scratch, with their own
    checkpoints (`retrieval_refit`); their `seconds` include the first fit's
    and their `history` is the first fit's (the one validation chose on).
    A sequence model (`TrainedSequence`) is refit the same way
    (`sequence_refit`).
    """
    from keras_rec.recommender.data.recommender_inputs import merge_validation
    from keras_rec.recommender.stages.sequence import TrainedSequence, fit_sequence

    merged = merge_validation(inputs)
    if isinstance(towers, TrainedSequence):
        model, _, seconds = fit_sequence(
            config,
            merged,
            run.strategy,
            checkpoint_dir=run.checkpoint_dir("sequence_refit"),
            chief=run.chief,
            name="sequence_refit",
            epochs=epochs,
        )
        return merged, TrainedSequence(model, towers.history, towers.seconds + seconds)
    retrieval, _, seconds = fit_retrieval(
        dataclasses.replace(config, epochs=epochs),
        merged,
        run.strategy,
        checkpoint_dir=run.checkpoint_dir("retrieval_refit"),
        chief=run.chief,
        name="retrieval_refit",
    )
    return merged, TrainedTowers(retrieval, towers.history, towers.seconds + seconds)
