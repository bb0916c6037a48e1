"""`LazyAdam`: Adam that updates only the rows a sparse gradient touches."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="keras_rec")
class LazyAdam(keras.optimizers.Adam):
    """Adam whose step costs the rows in the batch, not the rows in the table.

    Keras' `Adam` turns the `tf.IndexedSlices` gradient of an `Embedding`
    into a dense tensor and updates every row of the table and of both
    moment slots each step: with a million ids the step costs as much as the
    table, so training slows down as the catalogue grows. Here a sparse
    gradient updates the moments and the weights at the touched rows only
    (the "lazy" Adam of TF Addons and TF1's `LazyAdamOptimizer`); a row's
    moments decay only on the steps it appears in. Dense gradients take
    Keras' `Adam` path unchanged, so a model without embeddings trains
    exactly as with `keras.optimizers.Adam`.

    Args: those of `keras.optimizers.Adam` (`amsgrad` is not supported).

    Example:

    >>> model.compile(optimizer=keras_rec.recommender.LazyAdam(1e-3))
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.amsgrad:
            raise ValueError("`LazyAdam` does not support `amsgrad=True`.")

    def update_step(self, gradient, variable, learning_rate):
        import tensorflow as tf

        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        rows, positions = tf.unique(gradient.indices)
        values = tf.math.unsorted_segment_sum(
            tf.cast(gradient.values, dtype), positions, tf.shape(rows)[0]
        )
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        alpha = (
            tf.cast(learning_rate, dtype)
            * tf.sqrt(1 - tf.pow(beta_2, step))
            / (1 - tf.pow(beta_1, step))
        )
        index = self._get_variable_index(variable)
        m = self._momentums[index]
        v = self._velocities[index]
        m_rows = beta_1 * tf.gather(_tensor(m), rows) + (1 - beta_1) * values
        v_rows = beta_2 * tf.gather(_tensor(v), rows) + (1 - beta_2) * tf.square(values)
        self.assign(m, tf.IndexedSlices(m_rows, rows))
        self.assign(v, tf.IndexedSlices(v_rows, rows))
        step_rows = m_rows * alpha / (tf.sqrt(v_rows) + self.epsilon)
        self.assign_sub(variable, tf.IndexedSlices(step_rows, rows))


def _tensor(variable):
    return variable.value if isinstance(variable, keras.Variable) else variable
