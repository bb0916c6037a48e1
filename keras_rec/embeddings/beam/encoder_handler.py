"""`TextEncoderModelHandler`: a sentence encoder for Beam's `RunInference`."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from apache_beam.ml.inference.base import ModelHandler

from keras_rec.embeddings.encoder_settings import EncoderSettings

logger = logging.getLogger(__name__)


def text_length(pair: tuple[str, str]) -> int:
    """The batching length of a `(key, text)` element."""
    return len(pair[1])


class TextEncoderModelHandler(ModelHandler):
    """Encodes `(key, text)` elements into `(key, vector)` with a sentence encoder.

    `RunInference` loads the encoder once per worker process (shared by its
    threads) from `settings`. Batches of `settings.batch_size`; the pipeline
    hands them over prebatched by length (`with_no_batching()` after
    `SortAndBatchElements` on `text_length`). The loaded encoder must have the `identity`
    the pipeline was built for: its vectors go into that cache namespace. A
    batch that raises is encoded again, up to `max_attempts` times, before
    the error fails the bundle (which the runner then retries).

    Args:
        settings: `EncoderSettings`. What each worker loads.
        identity: dict. The encoder identity the launcher saw.
        max_attempts: int. Tries per batch.
        retry_seconds: float. Wait before the second try (doubling after).
        threads: int or None. Intra-op threads of the worker's torch (or
            TensorFlow, with `hub_dir`); `None` leaves the library's default
            (all cores), right for one worker per machine.
    """

    def __init__(
        self,
        settings: EncoderSettings,
        identity: dict[str, Any],
        max_attempts: int = 3,
        retry_seconds: float = 1.0,
        threads: int | None = None,
    ):
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ValueError(
                f"`threads` must be None or a positive integer. Received: threads={threads!r}"
            )
        if not isinstance(max_attempts, int) or max_attempts < 1:
            raise ValueError(
                "`max_attempts` must be a positive integer. "
                f"Received: max_attempts={max_attempts!r}"
            )
        super().__init__(
            min_batch_size=settings.batch_size,
            max_batch_size=settings.batch_size,
        )
        self.settings = settings
        self.identity = dict(identity)
        self.max_attempts = max_attempts
        self.retry_seconds = retry_seconds
        self.threads = threads

    def load_model(self):
        if self.threads is not None:
            _limit_threads(self.threads, tensorflow=self.settings.hub_dir is not None)
        encoder = self.settings.build(show_progress_bar=False)
        if encoder.identity() != self.identity:
            raise ValueError(
                "The encoder this worker loaded is not the one the pipeline was built for "
                "(did the model files change?). Worker: "
                f"{encoder.identity()}; pipeline: {self.identity}"
            )
        return encoder

    def run_inference(
        self,
        batch: Sequence[tuple[str, str]],
        model,
        inference_args: dict[str, Any] | None = None,
    ):
        texts = [text for _, text in batch]
        vectors = self._encode_with_retries(model, texts)
        return [(key, vector) for (key, _), vector in zip(batch, vectors)]

    def _encode_with_retries(self, model, texts):
        for attempt in range(1, self.max_attempts + 1):
            try:
                return model.encode(texts)
            except Exception as error:
                if attempt == self.max_attempts:
                    raise
                wait = self.retry_seconds * 2 ** (attempt - 1)
                logger.warning(
                    "Encoding %d texts failed (attempt %d of %d: %s); retrying in %.1fs.",
                    len(texts),
                    attempt,
                    self.max_attempts,
                    error,
                    wait,
                )
                time.sleep(wait)

    def get_metrics_namespace(self) -> str:
        return "keras_rec_encoder"


def _limit_threads(threads: int, tensorflow: bool) -> None:
    if tensorflow:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    else:
        import torch

        torch.set_num_threads(threads)
