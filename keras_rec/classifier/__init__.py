"""Text classifiers on TF Hub preprocessing + encoder layers, and their training."""

from keras_rec.classifier.scaled_adamw import ScaledAdamW, fine_tuning_optimizer
from keras_rec.classifier.serving_function import classifier_serving_function
from keras_rec.classifier.text_classifier import (
    build_classifier_head,
    build_text_classifier,
    build_token_id_classifier,
)
from keras_rec.classifier.train_classifier import ClassifierTrainingConfig, train_classifier
from keras_rec.classifier.warmup_linear_decay import WarmupLinearDecay

__all__ = [
    "ClassifierTrainingConfig",
    "ScaledAdamW",
    "WarmupLinearDecay",
    "build_classifier_head",
    "build_text_classifier",
    "build_token_id_classifier",
    "classifier_serving_function",
    "fine_tuning_optimizer",
    "train_classifier",
]
