"""`train_classifier`: data -> split -> train (frozen or fine-tuned) -> evaluate -> export."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from typing import Any

import numpy as np

from keras_rec.metric_keys import with_old_keys
from keras_rec.precision import SERVING_TOLERANCE
from keras_rec.training.classifier_config import ClassifierTrainingConfig
from keras_rec.training.script_arguments import config_dict, require_positive_ints

logger = logging.getLogger(__name__)

BUILTIN_DATASETS = ("sentiment_tweets",)


def train_classifier(config: ClassifierTrainingConfig) -> dict[str, Any]:
    """Trains, evaluates and exports a text classifier; returns its summary.

    1. Reads and validates the data before any training: missing labels or
       columns, classes with one example, unseen test labels all raise
       `DataValidationError` naming the rows. Duplicate texts are dropped
       (first kept) so no text is in two splits; then a stratified
       train/validation/test split with `seed`.
    2. Frozen (`trainable=False`): the encoder's outputs never change, so
       sentence embeddings are computed once through the embedding cache and
       only the head trains on them. Fine-tuned: the whole model trains with
       AdamW, a 50x lower rate for the encoder, warmup then linear decay, and
       gradient clipping; a checkpoint per epoch.
    3. Early stopping on validation loss (best weights kept), TensorBoard logs.
    4. Evaluation on the test split: accuracy, macro-F1, per-class
       precision/recall, confusion matrix (PNG).
    5. `keras_rec.serving.export` of the strings -> {probabilities, class_id,
       label} model to `<output_dir>/<model_name>/<version>/`, with
       `metrics.json`, `labels.txt` and the confusion matrix in `assets.extra/`;
       run files (logs, checkpoints, metrics.json, PNG) under
       `<output_dir>/runs/<model_name>-<version>/`.

    Args:
        config: a `ClassifierTrainingConfig`.

    With MLflow tracking on (`mlflow=True` or `MLFLOW_TRACKING_URI`), the
    run logs the config as parameters, per-epoch metrics, the test metrics,
    the confusion matrix and training curves, the exported SavedModel, a
    pyfunc model taking raw text (signature inferred from real examples) and
    the sentence-transformer.

    Returns:
        A JSON-serializable summary with the test metrics and export paths.
    """
    from keras_rec.tracking import tracking_run
    from keras_rec.training.training_run import training_run

    _check_config(config)
    with (
        training_run(config, config.model_name) as run,
        tracking_run(
            config.mlflow, config.mlflow_experiment, config.model_name, chief=run.chief
        ) as tracker,
    ):
        return _train_classifier(config, run, tracker)


def _train_classifier(config: ClassifierTrainingConfig, run, tracker) -> dict[str, Any]:
    import keras
    import tensorflow as tf
    from fsspec.implementations.local import LocalFileSystem

    from keras_rec.atomic_io import write_bytes_atomic
    from keras_rec.classifier import labeled_texts
    from keras_rec.classifier.evaluation import evaluation_report, plot_confusion_matrix
    from keras_rec.classifier.serving_function import classifier_serving_function
    from keras_rec.classifier.text_classifier import (
        build_classifier_head,
        build_text_classifier,
    )
    from keras_rec.embeddings.text_embedder import text_embedder
    from keras_rec.hub.local_hub import hub_modules
    from keras_rec.serving.saved_model_export import export
    from keras_rec.training.local_predict import predict_locally
    from keras_rec.training.strategy_fit import strategy_fit
    from keras_rec.training.training_plots import plot_training_curves

    start = time.perf_counter()
    tracker.log_params(config_dict(config))
    strategy = run.strategy

    # === Data ===
    frame, source = _load_frame(config)
    splits = labeled_texts.prepare_splits(
        frame,
        source,
        config.validation_fraction,
        config.test_fraction,
        config.seed,
        config.max_examples,
    )
    vocabulary, train, validation, test = (
        splits.vocabulary,
        splits.train,
        splits.validation,
        splits.test,
    )
    if config.test_data is not None:
        test = _external_test_split(config, vocabulary)
    logger.info("Split: %d train, %d validation, %d test", len(train), len(validation), len(test))

    # === Hub modules ===
    hub_dir, sentence_encoder = hub_modules(config.model, config.hub_dir, config.encoder_precision)
    preprocess_dir, encoder_dir = (os.path.join(hub_dir, n) for n in ("preprocess", "encoder"))

    run_dir = run.run_dir
    callbacks = _callbacks(config, run_dir, has_validation=len(validation) > 0)
    callbacks += tracker.keras_callbacks()
    fit_options = dict(
        strategy=strategy,
        seed=config.seed,
        checkpoint_dir=run.checkpoint_dir("classifier"),
        checkpoint_steps=config.checkpoint_steps,
        chief=run.chief,
        name=config.model_name,
    )
    validation_examples = None
    # === Training ===
    with strategy.scope():
        if config.trainable:
            model = build_text_classifier(
                preprocess_dir,
                encoder_dir,
                len(vocabulary),
                trainable=True,
                hidden_units=config.hidden_units,
                dropout=config.dropout,
            )
            steps = config.epochs * math.ceil(len(train) / config.batch_size)
            from keras_rec.classifier.scaled_adamw import fine_tuning_optimizer

            model.compile(
                optimizer=fine_tuning_optimizer(
                    steps, config.head_learning_rate, config.encoder_learning_rate
                ),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
            )
            if len(validation):
                validation_examples = _text_examples(validation)
            # Every worker saves (reading the weights may be a collective op);
            # the others' run directory is temporary.
            checkpoint_dir = os.path.join(run_dir, "checkpoints")
            os.makedirs(checkpoint_dir, exist_ok=True)
            callbacks.append(
                keras.callbacks.ModelCheckpoint(
                    os.path.join(checkpoint_dir, "epoch_{epoch:02d}.weights.h5"),
                    save_weights_only=True,
                )
            )
            history = strategy_fit(
                model,
                _text_examples(train),
                config.batch_size,
                config.epochs,
                validation_examples=validation_examples,
                callbacks=callbacks,
                **fit_options,
            )
        else:
            embed = text_embedder(sentence_encoder, config.cache, hub_dir)
            train_x = embed(train.texts)
            head = build_classifier_head(
                train_x.shape[1], len(vocabulary), config.hidden_units, config.dropout
            )
            head.compile(
                optimizer=keras.optimizers.Adam(config.head_learning_rate),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
            )
            if len(validation):
                validation_examples = tf.data.Dataset.from_tensor_slices(
                    (embed(validation.texts), validation.labels)
                )
            history = strategy_fit(
                head,
                tf.data.Dataset.from_tensor_slices((train_x, train.labels)),
                config.batch_size,
                config.epochs,
                validation_examples=validation_examples,
                callbacks=callbacks,
                **fit_options,
            )
            model = build_text_classifier(
                preprocess_dir, encoder_dir, len(vocabulary), trainable=False, head=head
            )
    train_seconds = time.perf_counter() - start
    cache_counts = None
    if not config.trainable and hasattr(embed, "encoded"):
        cache_counts = {"encoded": embed.encoded, "cached": embed.cached}

    # === Evaluation ===
    probabilities = predict_locally(model, np.array(test.texts, dtype=object), batch_size=64)
    report = evaluation_report(test.labels, probabilities, vocabulary)
    figure = plot_confusion_matrix(report, os.path.join(run_dir, "confusion_matrix.png"))
    curves = plot_training_curves(history.history, os.path.join(run_dir, "training_curves.png"))
    # Both names until metric_keys.REMOVED_IN (`accuracy` is also in `history`).
    metrics = with_old_keys(
        {
            "test_accuracy": report["accuracy"],
            "test_macro_f1": report["macro_f1"],
            "test_examples": report["examples"],
            "per_class": report["per_class"],
            "confusion_matrix": report["confusion_matrix"],
            "labels": vocabulary,
            "epochs_run": len(history.history.get("loss", [])),
            "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
        }
    )

    # === Export ===
    examples = (test.texts[:6] or train.texts[:6]) + ["", "   "]
    with open(figure, "rb") as file:
        figure_bytes = file.read()
    result = export(
        model,
        config.output_dir,
        config.model_name,
        examples=examples,
        signatures={"serving_default": classifier_serving_function(model, vocabulary)},
        target=config.target,
        atol=SERVING_TOLERANCE[config.encoder_precision],
        chief=run.chief,
        assets_extra={
            "metrics.json": json.dumps(metrics, indent=1),
            "labels.txt": "".join(f"{label}\n" for label in vocabulary),
            "confusion_matrix.png": figure_bytes,
        },
        metadata={"config": config_dict(config)},
    )
    summary = with_old_keys(
        {
            "model_name": config.model_name,
            "trainable": config.trainable,
            "test_accuracy": round(report["accuracy"], 4),
            "test_macro_f1": round(report["macro_f1"], 4),
            "test_examples": len(test),
            "train_examples": len(train),
            "validation_examples": len(validation),
            "duplicates_dropped": splits.duplicates_dropped,
            "embedding_cache": cache_counts,
            "labels": vocabulary,
            "export_path": result.path,
            "version": result.version,
            "run_dir": run_dir,
            "resumed": run.resumed,
            "resumed_at_epoch": history.resumed_at[0] + 1 if history.resumed_at else None,
            "workers": run.workers,
            "confusion_matrix_png": figure,
            "train_seconds": round(train_seconds, 1),
            "seconds": round(time.perf_counter() - start, 1),
        }
    )
    if run.chief:
        write_bytes_atomic(
            LocalFileSystem(),
            os.path.join(run_dir, "metrics.json"),
            json.dumps({**summary, **metrics}, indent=1).encode("utf-8"),
        )
        summary["metrics_json"] = os.path.join(run_dir, "metrics.json")

    # === Tracking ===
    if tracker.enabled:
        tracker.log_metrics(
            {
                "test_accuracy": report["accuracy"],
                "test_macro_f1": report["macro_f1"],
                "per_class": report["per_class"],
                "train_seconds": train_seconds,
            }
        )
        for path in (figure, curves, summary["metrics_json"]):
            tracker.log_artifact(path, "evaluation")
        if result.written:
            tracker.log_artifacts(result.path, "saved_model")
            probabilities = predict_locally(model, np.array(examples, dtype=object))
            summary["mlflow_model_uri"] = tracker.log_text_model(
                result.path,
                "classifier",
                examples,
                name="text_classifier",
                labels=vocabulary,
                expected={label: probabilities[:, i] for i, label in enumerate(vocabulary)},
            )
        if sentence_encoder is not None:
            summary["mlflow_sentence_transformer_uri"] = tracker.log_sentence_transformer(
                sentence_encoder.model, examples
            )
        summary["mlflow_run_id"] = tracker.run_id
    return summary


def _check_config(config: ClassifierTrainingConfig) -> None:
    require_positive_ints(config, ("epochs", "batch_size"))
    if config.max_examples is not None and config.max_examples < 10:
        raise ValueError(f"`max_examples` must be >= 10. Received: {config.max_examples}")


def _load_frame(config: ClassifierTrainingConfig):
    from keras_rec.data import read_text_labels, sentiment_tweets

    if config.data == "sentiment_tweets":
        return sentiment_tweets()[["text", "label"]], "Dataset 'sentiment_tweets'"
    if config.data in BUILTIN_DATASETS:
        raise ValueError(f"Unknown built-in dataset {config.data!r}")
    frame = read_text_labels(
        config.data,
        config.text_column,
        config.label_column,
        encoding=config.encoding,
        missing_text="empty",
    )
    return frame, f"File '{config.data}'"


def _external_test_split(config, vocabulary):
    from keras_rec.classifier.labeled_texts import LabeledSplit, encode_labels
    from keras_rec.data import read_text_labels

    frame = read_text_labels(
        config.test_data,
        config.text_column,
        config.label_column,
        encoding=config.encoding,
        missing_text="empty",
    )
    labels = encode_labels(frame["label"], vocabulary, f"File '{config.test_data}'")
    return LabeledSplit(frame["text"].tolist(), labels, np.arange(len(frame), dtype=np.int64))


def _text_examples(split):
    """Unbatched `tf.data` of `(text, label)` examples of a split."""
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(
        (tf.constant(split.texts, tf.string), tf.constant(split.labels, tf.int64))
    )


def _callbacks(config, run_dir, has_validation):
    import keras

    callbacks = [keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"), write_graph=False)]
    if config.patience and has_validation:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.patience, restore_best_weights=True
            )
        )
    return callbacks
