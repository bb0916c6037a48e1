"""Serving checks: does a SavedModel only use ops that a TF Serving build has."""

from keras_rec.serving.op_check import (
    DEFAULT_TARGET,
    OpCheckResult,
    OpSet,
    ServingCompatibilityError,
    assert_servable,
    available_targets,
    check_serving_ops,
    load_op_set,
)
from keras_rec.serving.saved_model_ops import list_core_ops, list_saved_model_ops

__all__ = [
    "DEFAULT_TARGET",
    "OpCheckResult",
    "OpSet",
    "ServingCompatibilityError",
    "assert_servable",
    "available_targets",
    "check_serving_ops",
    "list_core_ops",
    "list_saved_model_ops",
    "load_op_set",
]
