"""`strategy_fit`: trains a compiled Keras 3 model under any `tf.distribute` strategy.

Keras 3's `fit` fails under `MultiWorkerMirroredStrategy`
(keras-team/keras#20585: its symbolic build reduces a dict of per-replica
batches), so the training runs use this loop for every strategy: one code
path, whether one process or several workers run it.

- Each epoch, every worker reads its own shard of the examples
  (`distribute_datasets_from_function`), shuffles it with a seed derived
  from (seed, epoch, worker) and cuts batches of `batch_size / replicas`.
  Every replica runs the same number of steps, `ceil(examples /
  batch_size)`; a shard that runs out wraps to its start, so every batch
  is full (the in-batch softmax never sees a short or empty batch).
- Each step runs the model's own `train_step` under `strategy.run`: Keras
  scales the loss by the replica count and its optimizer all-reduces the
  gradients, so workers apply the same update and stay identical.
- Metrics are read once per epoch in cross-replica context, where Keras'
  metric variables (`ON_READ`, summed) aggregate over every replica: every
  worker logs the same figures, and early stopping decides the same way.
- A `tf.train.Checkpoint` of the model and optimizer variables, the epoch
  and the step within it is written at each epoch end and every
  `checkpoint_steps` steps (the chief writes to `checkpoint_dir`, the other
  workers to a temporary folder they delete, as TensorFlow's multi-worker
  guide prescribes). A restarted run restores the chief's latest checkpoint
  and broadcasts the chief's variables and position to every worker, so a
  worker on another machine (or one that was never saved) starts from the
  same state. The epoch's data order depends only on (seed, epoch), so a
  resumed epoch skips exactly the batches already trained on.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from keras_rec.object_identity import unique_by_identity
from keras_rec.training.indexed_examples import IndexedExamples


def replica_batch_size(batch_size: int, examples: int, replicas: int) -> int:
    """A batch size `strategy_fit` takes for a batch chosen from the data.

    `batch_size`, or all `examples` when there are fewer, rounded down to a
    multiple of `replicas` (at least one example per replica): 63 examples
    on two workers train in batches of 62.
    """
    return max(replicas, min(batch_size, examples) // replicas * replicas)


def strategy_fit(
    model,
    examples,
    batch_size: int,
    epochs: int,
    *,
    strategy=None,
    seed: int = 0,
    validation_examples=None,
    callbacks: Sequence[Any] = (),
    checkpoint_dir: str | None = None,
    checkpoint_steps: int | None = None,
    chief: bool = True,
    name: str = "fit",
):
    """Trains `model` on `examples` for `epochs`; returns a `keras.callbacks.History`.

    Args:
        model: a compiled Keras model, built and compiled under
            `strategy.scope()`.
        examples: an unbatched `tf.data.Dataset` of `x` or `(x, y)` or
            `(x, y, sample_weight)` with a known, finite length, or
            `IndexedExamples` (batches looked up from row indices: memory
            holds the feature tables once, not one copy per example).
        batch_size: int. The global batch size, split across replicas (it
            must divide evenly).
        epochs: int. The total number of epochs (a resumed run trains only
            the epochs it has not finished).
        strategy: a `tf.distribute.Strategy` (default: the current one).
        seed: int. Seed of the per-epoch shuffle.
        validation_examples: like `examples` (either kind),
            evaluated after each epoch (`val_` logs), or None.
        callbacks: Keras callbacks, driven at train and epoch boundaries
            (`TensorBoard`, `EarlyStopping`, MLflow logging, ...). Give the
            ones that write files only to the chief.
        checkpoint_dir: str or None. Where the resumable checkpoints go
            (None: none are written or restored).
        checkpoint_steps: int or None. Also checkpoint every this many steps.
        chief: bool. Whether this worker writes the real checkpoints.
        name: str. Names the run in the log lines.

    Returns:
        A `History` of the epochs run by this call; `history.resumed_at`
        is `(epoch, step)` of the restored checkpoint, or None.
    """
    import keras
    import tensorflow as tf

    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(
            f"`batch_size` ({batch_size}) must be a multiple of the number of replicas "
            f"({replicas}): each replica trains on `batch_size / replicas` examples a step."
        )
    steps = _steps(examples, batch_size, "examples")
    validation_steps = (
        _steps(validation_examples, batch_size, "validation_examples")
        if validation_examples is not None
        else 0
    )
    with strategy.scope():
        model.optimizer.build(model.trainable_variables)
    state = _TrainingState(model, checkpoint_dir, chief)
    resumed_at = state.restore(strategy)
    start_epoch, start_step = resumed_at or (0, 0)

    history = keras.callbacks.History()
    callback_list = keras.callbacks.CallbackList(
        [*callbacks, history], model=model, epochs=epochs, steps=steps, verbose=0
    )
    train_step = _distributed_step(strategy, model.train_step)
    test_step = _distributed_step(strategy, model.test_step)

    model.stop_training = False
    callback_list.on_train_begin()
    _say(f"{name}: {epochs} epochs of {steps} steps")
    if resumed_at:
        _say(f"{name}: resuming at epoch {start_epoch + 1}, step {start_step}/{steps}")
    for epoch in range(start_epoch, epochs):
        if model.stop_training:
            break
        _say(f"Epoch {epoch + 1}/{epochs}")
        callback_list.on_epoch_begin(epoch)
        began = time.perf_counter()
        model.reset_metrics()
        first = start_step if epoch == start_epoch else 0
        batches = iter(_epoch_batches(strategy, examples, batch_size, seed + epoch, first))
        for step in range(first, steps):
            train_step(batches)
            if checkpoint_steps and (step + 1) % checkpoint_steps == 0 and step + 1 < steps:
                if state.save(epoch, step + 1):
                    _say(f"{name}: checkpoint at epoch {epoch + 1}, step {step + 1}/{steps}")
        logs = _metric_values(model)
        if validation_examples is not None:
            model.reset_metrics()
            batches = iter(_epoch_batches(strategy, validation_examples, batch_size, None, 0))
            for _ in range(validation_steps):
                test_step(batches)
            logs.update({f"val_{k}": v for k, v in _metric_values(model).items()})
        state.save(epoch + 1, 0)
        seconds = time.perf_counter() - began
        _say(
            f"{steps}/{steps} - {seconds:.0f}s - "
            + " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
        )
        callback_list.on_epoch_end(epoch, logs)
    callback_list.on_train_end()
    state.close()
    history.resumed_at = resumed_at
    return history


def _steps(examples, batch_size: int, argument: str) -> int:
    count = examples.count if isinstance(examples, IndexedExamples) else int(examples.cardinality())
    if count < 0:
        raise ValueError(
            f"`{argument}` must have a known, finite length (e.g. built with "
            f"`tf.data.Dataset.from_tensor_slices`). Received cardinality {count}."
        )
    if count == 0:
        raise ValueError(f"`{argument}` is empty: there is nothing to train or evaluate on.")
    return math.ceil(count / batch_size)


def _epoch_batches(strategy, examples, batch_size: int, seed: int | None, skip: int):
    """This worker's per-replica batches of one epoch, distributed over its replicas."""
    import tensorflow as tf

    if isinstance(examples, IndexedExamples):
        return _indexed_epoch_batches(strategy, examples, batch_size, seed, skip)

    def replica_batches(context: tf.distribute.InputContext):
        shard = examples.shard(context.num_input_pipelines, context.input_pipeline_id)
        if seed is not None:
            size = max(int(shard.cardinality()), 1)
            shard = shard.shuffle(size, seed=seed * 1_000_003 + context.input_pipeline_id)
        shard = shard.repeat().batch(
            context.get_per_replica_batch_size(batch_size), drop_remainder=True
        )
        per_pipeline = context.num_replicas_in_sync // context.num_input_pipelines
        return shard.skip(skip * per_pipeline).prefetch(tf.data.AUTOTUNE)

    return strategy.distribute_datasets_from_function(replica_batches)


def _indexed_epoch_batches(strategy, examples, batch_size: int, seed: int | None, skip: int):
    """`_epoch_batches` of `IndexedExamples`: indices shuffled in NumPy, batches looked up."""
    import tensorflow as tf

    steps = math.ceil(examples.count / batch_size)

    def replica_batches(context: tf.distribute.InputContext):
        per_pipeline = context.num_replicas_in_sync // context.num_input_pipelines
        rows = examples.epoch_rows(
            context.get_per_replica_batch_size(batch_size),
            steps * per_pipeline,
            context.input_pipeline_id,
            context.num_input_pipelines,
            None if seed is None else seed * 1_000_003 + context.input_pipeline_id,
        )
        return examples.dataset(rows[skip * per_pipeline :]).prefetch(tf.data.AUTOTUNE)

    return strategy.distribute_datasets_from_function(replica_batches)


def _distributed_step(strategy, step_function):
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def run(iterator):
        strategy.run(step_function, args=(next(iterator),))

    return run


def _metric_values(model) -> dict[str, float]:
    """The model's metrics as floats, aggregated over every replica (cross-replica read)."""
    values = {}
    for key, value in model.get_metrics_result().items():
        try:
            values[key] = float(value)
        except TypeError:  # a metric returning several values
            continue
    return values


def _say(line: str) -> None:
    print(line, flush=True)


class _TrainingState:
    """The model and optimizer variables, the epoch and the step: saved, restored, shared."""

    def __init__(self, model, checkpoint_dir: str | None, chief: bool):
        import tensorflow as tf

        metric_variables = {id(v) for metric in model.metrics for v in metric.variables}
        self.variables = [
            v.value for v in unique_by_identity([*model.variables, *model.optimizer.variables])
            if id(v) not in metric_variables
        ]  # fmt: skip
        self.position = tf.Variable([0, 0], dtype=tf.int64, trainable=False, name="position")
        self.checkpoint_dir = checkpoint_dir
        self.write_dir = None
        if checkpoint_dir is not None:
            self.write_dir = checkpoint_dir if chief else tempfile.mkdtemp(prefix="worker-ckpt-")
            checkpoint = tf.train.Checkpoint(variables=self.variables, position=self.position)
            self.manager = tf.train.CheckpointManager(checkpoint, self.write_dir, max_to_keep=2)
            self.checkpoint = checkpoint
        self.chief = chief

    def restore(self, strategy) -> tuple[int, int] | None:
        """Restores the latest checkpoint (chief's) and shares it; `(epoch, step)` or None."""
        import tensorflow as tf

        if self.checkpoint_dir is not None and self.chief:
            latest = tf.train.latest_checkpoint(self.checkpoint_dir)
            if latest:
                self.checkpoint.read(latest).assert_existing_objects_matched()
        if strategy.num_replicas_in_sync > 1:
            _broadcast_from_first_replica(strategy, [*self.variables, self.position])
        epoch, step = (int(x) for x in self.position.numpy())
        return (epoch, step) if (epoch, step) != (0, 0) else None

    def save(self, epoch: int, step: int) -> bool:
        """Checkpoints the state at `(epoch, step)`; returns whether one was written."""
        if self.checkpoint_dir is None:
            return False
        self.position.assign([epoch, step])
        self.manager.save()
        return True

    def close(self) -> None:
        if self.write_dir is not None and not self.chief:
            shutil.rmtree(self.write_dir, ignore_errors=True)


def _broadcast_from_first_replica(strategy, variables) -> None:
    """Sets every replica's copy of `variables` to replica 0's (the chief's) values."""
    import tensorflow as tf

    def first_replica_values():
        context = tf.distribute.get_replica_context()
        is_first = tf.equal(context.replica_id_in_sync_group, 0)
        masked = [
            tf.where(is_first, tf.cast(v, tf.float64), tf.zeros(v.shape, tf.float64))
            for v in variables
        ]
        return context.all_reduce(tf.distribute.ReduceOp.SUM, masked)

    values = strategy.run(tf.function(first_replica_values))
    for variable, value in zip(variables, values):
        local = strategy.experimental_local_results(value)[0]
        variable.assign(tf.cast(local, variable.dtype))
