"""`train_classifier`: data -> split -> train (frozen or fine-tuned) -> evaluate -> export."""

from __future__ import annotations

import dataclasses
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


@dataclasses.dataclass
class _Data:
    """The labelled splits: `vocabulary`, `train`, `validation`, `test` (`LabeledSplit`s)."""

    vocabulary: list
    train: Any
    validation: Any
    test: Any
    duplicates_dropped: int


@dataclasses.dataclass
class _Trained:
    """The trained text classifier, its history, the embedding cache's counts, the time."""

    model: Any
    history: Any
    cache_counts: dict | None
    seconds: float


def _train_classifier(config: ClassifierTrainingConfig, run, tracker) -> dict[str, Any]:
    from keras_rec.hub.local_hub import hub_modules

    start = time.perf_counter()
    tracker.log_params(config_dict(config))
    data = _read_splits(config)
    hub_dir, sentence_encoder = hub_modules(config.model, config.hub_dir, config.encoder_precision)
    fit = _fit_fine_tuned if config.trainable else _fit_frozen
    trained = fit(config, data, hub_dir, sentence_encoder, run, tracker)
    trained.seconds = time.perf_counter() - start
    metrics, plots = _evaluate(trained, data, run.run_dir)
    examples = (data.test.texts[:6] or data.train.texts[:6]) + ["", "   "]
    result = _export(config, trained.model, data.vocabulary, metrics, plots[0], examples, run)
    summary = _summary(config, data, trained, metrics, result, run, plots[0])
    summary["seconds"] = round(time.perf_counter() - start, 1)
    if run.chief:
        summary["metrics_json"] = _write_metrics(summary, metrics, run.run_dir)
    if tracker.enabled:
        summary.update(
            _track(tracker, trained, metrics, plots, summary, result, examples, sentence_encoder)
        )
    return summary


def _read_splits(config) -> _Data:
    """The data read, checked and split (the test split from `test_data` when given)."""
    from keras_rec.classifier import labeled_texts

    frame, source = _load_frame(config)
    splits = labeled_texts.prepare_splits(
        frame,
        source,
        config.validation_fraction,
        config.test_fraction,
        config.seed,
        config.max_examples,
    )
    test = splits.test
    if config.test_data is not None:
        test = _external_test_split(config, splits.vocabulary)
    logger.info(
        "Split: %d train, %d validation, %d test",
        len(splits.train),
        len(splits.validation),
        len(test),
    )
    return _Data(
        splits.vocabulary, splits.train, splits.validation, test, splits.duplicates_dropped
    )


def _fit_options(config, run, tracker, has_validation) -> dict:
    """`strategy_fit`'s arguments shared by both trainings, callbacks included."""
    callbacks = _callbacks(config, run.run_dir, has_validation) + tracker.keras_callbacks()
    return dict(
        callbacks=callbacks,
        strategy=run.strategy,
        seed=config.seed,
        checkpoint_dir=run.checkpoint_dir("classifier"),
        checkpoint_steps=config.checkpoint_steps,
        chief=run.chief,
        name=config.model_name,
    )


def _fit_fine_tuned(config, data: _Data, hub_dir, sentence_encoder, run, tracker) -> _Trained:
    """The whole model trained: AdamW, a lower encoder rate, a checkpoint per epoch."""
    import keras

    from keras_rec.classifier.scaled_adamw import fine_tuning_optimizer
    from keras_rec.classifier.text_classifier import build_text_classifier
    from keras_rec.training.strategy_fit import strategy_fit

    options = _fit_options(config, run, tracker, len(data.validation) > 0)
    # Every worker saves (reading the weights may be a collective op); the others'
    # run directory is temporary.
    checkpoint_dir = os.path.join(run.run_dir, "checkpoints")
    os.makedirs(checkpoint_dir, exist_ok=True)
    options["callbacks"].append(
        keras.callbacks.ModelCheckpoint(
            os.path.join(checkpoint_dir, "epoch_{epoch:02d}.weights.h5"), save_weights_only=True
        )
    )
    with run.strategy.scope():
        model = build_text_classifier(
            *_hub_paths(hub_dir),
            len(data.vocabulary),
            trainable=True,
            hidden_units=config.hidden_units,
            dropout=config.dropout,
        )
        steps = config.epochs * math.ceil(len(data.train) / config.batch_size)
        model.compile(
            optimizer=fine_tuning_optimizer(
                steps, config.head_learning_rate, config.encoder_learning_rate
            ),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        history = strategy_fit(
            model,
            _text_examples(data.train),
            config.batch_size,
            config.epochs,
            validation_examples=_text_examples(data.validation) if len(data.validation) else None,
            **options,
        )
    return _Trained(model, history, None, 0.0)


def _fit_frozen(config, data: _Data, hub_dir, sentence_encoder, run, tracker) -> _Trained:
    """The head trained on embeddings computed once (through the cache), then put on
    the frozen encoder."""
    import keras
    import tensorflow as tf

    from keras_rec.classifier.text_classifier import build_classifier_head, build_text_classifier
    from keras_rec.embeddings.text_embedder import text_embedder
    from keras_rec.training.strategy_fit import strategy_fit

    embed = text_embedder(sentence_encoder, config.cache, hub_dir)
    options = _fit_options(config, run, tracker, len(data.validation) > 0)
    with run.strategy.scope():
        train_x = embed(data.train.texts)
        head = build_classifier_head(
            train_x.shape[1], len(data.vocabulary), config.hidden_units, config.dropout
        )
        head.compile(
            optimizer=keras.optimizers.Adam(config.head_learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        validation = None
        if len(data.validation):
            validation = tf.data.Dataset.from_tensor_slices(
                (embed(data.validation.texts), data.validation.labels)
            )
        history = strategy_fit(
            head,
            tf.data.Dataset.from_tensor_slices((train_x, data.train.labels)),
            config.batch_size,
            config.epochs,
            validation_examples=validation,
            **options,
        )
        model = build_text_classifier(
            *_hub_paths(hub_dir), len(data.vocabulary), trainable=False, head=head
        )
    counts = (
        {"encoded": embed.encoded, "cached": embed.cached} if hasattr(embed, "encoded") else None
    )
    return _Trained(model, history, counts, 0.0)


def _hub_paths(hub_dir: str) -> tuple[str, str]:
    return os.path.join(hub_dir, "preprocess"), os.path.join(hub_dir, "encoder")


def _evaluate(trained: _Trained, data: _Data, run_dir: str) -> tuple[dict, list[str]]:
    """`(metrics, [confusion matrix PNG, training curves PNG])` on the test split."""
    from keras_rec.classifier.evaluation import evaluation_report, plot_confusion_matrix
    from keras_rec.training.local_predict import predict_locally
    from keras_rec.training.training_plots import plot_training_curves

    texts = np.array(data.test.texts, dtype=object)
    probabilities = predict_locally(trained.model, texts, batch_size=64)
    report = evaluation_report(data.test.labels, probabilities, data.vocabulary)
    history = trained.history.history
    plots = [
        plot_confusion_matrix(report, os.path.join(run_dir, "confusion_matrix.png")),
        plot_training_curves(history, os.path.join(run_dir, "training_curves.png")),
    ]
    # Both names until metric_keys.REMOVED_IN (`accuracy` is also in `history`).
    metrics = with_old_keys(
        {
            "test_accuracy": report["accuracy"],
            "test_macro_f1": report["macro_f1"],
            "test_examples": report["examples"],
            "per_class": report["per_class"],
            "confusion_matrix": report["confusion_matrix"],
            "labels": data.vocabulary,
            "epochs_run": len(history.get("loss", [])),
            "history": {k: [float(v) for v in vs] for k, vs in history.items()},
        }
    )
    return metrics, plots


def _export(config, model, vocabulary, metrics, figure, examples, run):
    """The strings -> {probabilities, class_id, label} SavedModel, checked and versioned."""
    from keras_rec.classifier.serving_function import classifier_serving_function
    from keras_rec.serving.saved_model_export import export

    with open(figure, "rb") as file:
        figure_bytes = file.read()
    return export(
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


def _summary(config, data: _Data, trained: _Trained, metrics, result, run, figure) -> dict:
    history = trained.history
    return with_old_keys(
        {
            "model_name": config.model_name,
            "trainable": config.trainable,
            "test_accuracy": round(metrics["test_accuracy"], 4),
            "test_macro_f1": round(metrics["test_macro_f1"], 4),
            "test_examples": len(data.test),
            "train_examples": len(data.train),
            "validation_examples": len(data.validation),
            "duplicates_dropped": data.duplicates_dropped,
            "embedding_cache": trained.cache_counts,
            "labels": data.vocabulary,
            "export_path": result.path,
            "version": result.version,
            "run_dir": run.run_dir,
            "resumed": run.resumed,
            "resumed_at_epoch": history.resumed_at[0] + 1 if history.resumed_at else None,
            "workers": run.workers,
            "confusion_matrix_png": figure,
            "train_seconds": round(trained.seconds, 1),
        }
    )


def _write_metrics(summary: dict, metrics: dict, run_dir: str) -> str:
    from fsspec.implementations.local import LocalFileSystem

    from keras_rec.atomic_io import write_bytes_atomic

    path = os.path.join(run_dir, "metrics.json")
    text = json.dumps({**summary, **metrics}, indent=1).encode("utf-8")
    write_bytes_atomic(LocalFileSystem(), path, text)
    return path


def _track(tracker, trained, metrics, plots, summary, result, examples, sentence_encoder) -> dict:
    """Logs the run to MLflow; returns the summary entries it adds."""
    from keras_rec.training.local_predict import predict_locally

    tracker.log_metrics(
        {
            "test_accuracy": metrics["test_accuracy"],
            "test_macro_f1": metrics["test_macro_f1"],
            "per_class": metrics["per_class"],
            "train_seconds": trained.seconds,
        }
    )
    for path in (*plots, summary["metrics_json"]):
        tracker.log_artifact(path, "evaluation")
    added = {}
    if result.written:
        tracker.log_artifacts(result.path, "saved_model")
        vocabulary = metrics["labels"]
        probabilities = predict_locally(trained.model, np.array(examples, dtype=object))
        added["mlflow_model_uri"] = tracker.log_text_model(
            result.path,
            "classifier",
            examples,
            name="text_classifier",
            labels=vocabulary,
            expected={label: probabilities[:, i] for i, label in enumerate(vocabulary)},
        )
    if sentence_encoder is not None:
        added["mlflow_sentence_transformer_uri"] = tracker.log_sentence_transformer(
            sentence_encoder.model, examples
        )
    added["mlflow_run_id"] = tracker.run_id
    return added


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
