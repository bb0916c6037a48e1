"""MLflow pyfunc model over a keras_rec text SavedModel (logged as code: needs TF + TF Text only).

`predict(["some text", ...])` -> a DataFrame: class probabilities (one
column per label) for a classifier, or the top-K `item_ids`, `scores` and
`titles` for a query-retrieval model.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd


class TextSavedModel(mlflow.pyfunc.PythonModel):
    """Runs the SavedModel's `serving_default` on a batch of strings."""

    def load_context(self, context):
        self.load_from(context.artifacts["saved_model"], context.model_config)

    def load_from(self, path, model_config):
        import tensorflow as tf

        try:
            import tensorflow_text  # noqa: F401  (registers the tokenizer ops)
        except ImportError:
            pass
        self.kind = model_config["kind"]
        self.labels = list(model_config.get("labels") or [])
        self.module = tf.saved_model.load(path)
        self.signature = self.module.signatures["serving_default"]
        self.input_name = next(iter(self.signature.structured_input_signature[1]))

    def predict(self, context, model_input, params=None):
        import tensorflow as tf

        if isinstance(model_input, pd.DataFrame):
            texts = model_input.iloc[:, 0]
        elif isinstance(model_input, str):
            texts = [model_input]
        else:
            texts = model_input
        texts = ["" if t is None else str(t) for t in list(texts)]
        outputs = self.signature(**{self.input_name: tf.constant(texts, tf.string)})
        if self.kind == "classifier":
            probabilities = outputs["probabilities"].numpy().astype(np.float64)
            labels = self.labels or [str(i) for i in range(probabilities.shape[1])]
            return pd.DataFrame(probabilities, columns=labels)
        return pd.DataFrame(
            {
                "item_ids": [row.tolist() for row in outputs["item_ids"].numpy()],
                "scores": [row.astype(np.float64).tolist() for row in outputs["scores"].numpy()],
                "titles": [[t.decode("utf-8") for t in row] for row in outputs["titles"].numpy()],
            }
        )


mlflow.models.set_model(TextSavedModel())
