"""Trains a small `TwoTowerRetrieval` with `strategy_fit` on one device or two; prints JSON.

Run as a script (the logical CPU devices must be set before TensorFlow
starts): `python two_replica_retrieval.py {one,two,workers} CHECKPOINT_DIR
EPOCHS [LOSS]`: one device, two replicas in this process, or one replica per
worker process of `TF_CONFIG`'s cluster. LOSS `sequence_softmax` or
`sequence_sampled_softmax` trains a `NextItemModel` instead.
Prints `{"loss": [...], "weights": checksum, "first_weight": [...]}`.
"""

import json
import os
import sys

import numpy as np
import tensorflow as tf

if sys.argv[1] == "two":
    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0],
        [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()],
    )

import keras  # noqa: E402

from keras_rec.recommender.layers.tower import build_tower  # noqa: E402
from keras_rec.recommender.layers.two_tower_retrieval import TwoTowerRetrieval  # noqa: E402
from keras_rec.training.strategy_fit import strategy_fit  # noqa: E402


def main(devices: str, checkpoint_dir: str, epochs: int, loss: str = "softmax") -> None:
    if devices == "workers":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    elif devices == "two":
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    else:
        strategy = tf.distribute.get_strategy()
    keras.utils.set_random_seed(7)
    if loss.startswith("sequence_"):
        with strategy.scope():
            model, examples = _sequence_model(loss[len("sequence_") :])
        _report(model, examples, strategy, checkpoint_dir, epochs)
        return
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 50, 600), rng.integers(0, 40, 600)
    user_text, item_text = rng.normal(size=(50, 12)), rng.normal(size=(40, 12))
    pairs = tf.data.Dataset.from_tensor_slices(
        {
            "user": {"embedding": user_text[users].astype("float32")},
            "item": {"embedding": item_text[items].astype("float32")},
            "item_key": items.astype("int64"),
            "item_log_q": np.log(np.bincount(items, minlength=40) / 600)[items].astype("float32"),
        }
    )
    with strategy.scope():
        model = TwoTowerRetrieval(
            build_tower(12, "user_tower", output_dim=8, hidden_units=(16,), dropout=0.0),
            build_tower(12, "item_tower", output_dim=8, hidden_units=(16,), dropout=0.0),
            temperature=0.1,
            loss=loss,
        )
        model.compile(optimizer=keras.optimizers.Adam(0.01))
        model({"user": {"embedding": user_text[:2]}, "item": {"embedding": item_text[:2]}})
    _report(model, pairs, strategy, checkpoint_dir, epochs)


def _sequence_model(loss: str):
    """A small `NextItemModel` and its windows (every window full: no padding)."""
    from keras_rec.recommender.layers.next_item_model import NextItemModel

    rng = np.random.default_rng(0)
    tower = build_tower(
        12, "item_tower", output_dim=8, hidden_units=(16,), dropout=0.0, id_vocabulary_size=41
    )
    model = NextItemModel(
        tower, 40, 12, max_history=4, num_layers=1, num_heads=2, dropout=0.0,
        temperature=0.1, loss=loss, seed=7,
    )  # fmt: skip
    model.set_items(rng.normal(size=(40, 12)), np.arange(1, 41), np.full(40, -np.log(40.0)))
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    model({"history": np.zeros((1, 4), np.int64)})
    walks = (rng.integers(0, 40, 128)[:, None] + rng.integers(1, 4, (128, 5)).cumsum(1)) % 40
    examples = tf.data.Dataset.from_tensor_slices(
        {"history": walks[:, :-1].astype("int64"), "targets": walks[:, 1:].astype("int64")}
    )
    return model, examples


def _report(model, examples, strategy, checkpoint_dir, epochs):
    chief = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {}).get("index", 0) == 0
    history = strategy_fit(
        model,
        examples,
        64,
        epochs,
        strategy=strategy,
        seed=3,
        checkpoint_dir=checkpoint_dir,
        chief=chief,
    )
    weights = model.get_weights()
    print(
        json.dumps(
            {
                "loss": history.history["loss"],
                "weights": float(sum(np.abs(w).sum() for w in weights)),
                "first_weight": weights[0].ravel()[:8].tolist(),
                "resumed_at": history.resumed_at,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:])
