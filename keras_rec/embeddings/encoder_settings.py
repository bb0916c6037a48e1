"""`EncoderSettings`: what builds a text encoder, as a small picklable value.

A distributed job (a Beam worker) cannot be handed a loaded model; it is
handed these settings and builds the encoder itself, once per process.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from keras_rec.precision import PRECISIONS


@dataclasses.dataclass(frozen=True)
class EncoderSettings:
    """The arguments of `SentenceEncoder`, or a `keras-rec export-hub` directory.

    Args:
        model: str or None. sentence-transformer path or hub id (`None`: the
            embedded all-MiniLM-L6-v2).
        hub_dir: str or None. A `keras-rec export-hub` directory: the TF Hub
            modules encode instead of the sentence-transformer.
        batch_size: int. Texts per model call.
        max_seq_length: int or None. Token limit (`None`: the model's).
        normalize: bool. L2-normalize the vectors.
        device: str or None. Torch device.
        backend: str. `"torch"`, `"onnx"` or `"openvino"`.
        precision: str. `"float32"` or `"bfloat16"`.
    """

    model: str | None = None
    hub_dir: str | None = None
    batch_size: int = 64
    max_seq_length: int | None = None
    normalize: bool = False
    device: str | None = None
    backend: str = "torch"
    precision: str = PRECISIONS[0]

    def __post_init__(self):
        if self.hub_dir is None:
            return
        conflicting = {
            name: getattr(self, name)
            for name, default in (
                ("model", None),
                ("max_seq_length", None),
                ("device", None),
                ("backend", "torch"),
                ("precision", PRECISIONS[0]),
            )
            if getattr(self, name) != default
        }
        if conflicting:
            raise ValueError(
                "`hub_dir` fixes the model, its token limit, backend and precision (those "
                f"of its export); do not also pass {sorted(conflicting)}. Received: "
                f"hub_dir={self.hub_dir!r}, {conflicting}"
            )

    def build(self, show_progress_bar: bool | None = None) -> Any:
        """Loads the encoder: a `SentenceEncoder` or a `HubSentenceEncoder`."""
        if self.hub_dir is not None:
            from keras_rec.embeddings.hub_sentence_encoder import HubSentenceEncoder

            return HubSentenceEncoder(
                self.hub_dir, batch_size=self.batch_size, normalize=self.normalize
            )
        from keras_rec.embeddings.sentence_encoder import SentenceEncoder

        return SentenceEncoder(
            self.model,
            device=self.device,
            batch_size=self.batch_size,
            max_seq_length=self.max_seq_length,
            normalize=self.normalize,
            show_progress_bar=show_progress_bar,
            backend=self.backend,
            precision=self.precision,
        )
