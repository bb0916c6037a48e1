"""Serving: versioned exports for TF Serving, op checks, configs and packages."""

from keras_rec.serving.fresh_process_check import FreshProcessCheckError, check_in_fresh_process
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
from keras_rec.serving.rest_examples import predict_rest, rest_request, rest_response
from keras_rec.serving.sagemaker_package import package_sagemaker
from keras_rec.serving.saved_model_export import ExportResult, export
from keras_rec.serving.saved_model_ops import list_core_ops, list_saved_model_ops
from keras_rec.serving.serving_config import write_serving_config
from keras_rec.serving.warmup_requests import read_warmup_requests, write_warmup_requests

__all__ = [
    "DEFAULT_TARGET",
    "ExportResult",
    "FreshProcessCheckError",
    "OpCheckResult",
    "OpSet",
    "ServingCompatibilityError",
    "assert_servable",
    "available_targets",
    "check_in_fresh_process",
    "check_serving_ops",
    "export",
    "list_core_ops",
    "list_saved_model_ops",
    "load_op_set",
    "package_sagemaker",
    "predict_rest",
    "read_warmup_requests",
    "rest_request",
    "rest_response",
    "write_serving_config",
    "write_warmup_requests",
]
