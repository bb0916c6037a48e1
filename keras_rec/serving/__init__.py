"""Serving: versioned exports for TF Serving, op checks, configs and packages."""

from keras_rec.serving.fresh_process import LOADERS, ServingCheckError, answer_in_fresh_process
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
from keras_rec.serving.rest_examples import (
    predict_rest,
    rest_request,
    rest_request_inputs,
    rest_response,
)
from keras_rec.serving.sagemaker_package import package_sagemaker
from keras_rec.serving.saved_model_export import ExportResult, export
from keras_rec.serving.saved_model_ops import (
    list_core_ops,
    list_saved_model_ops,
    serving_signature_specs,
)
from keras_rec.serving.serving_check import check_serving
from keras_rec.serving.serving_config import write_serving_config
from keras_rec.serving.serving_root import serving_root
from keras_rec.serving.warmup_requests import read_warmup_requests, write_warmup_requests

__all__ = [
    "DEFAULT_TARGET",
    "ExportResult",
    "LOADERS",
    "OpCheckResult",
    "OpSet",
    "ServingCheckError",
    "ServingCompatibilityError",
    "answer_in_fresh_process",
    "assert_servable",
    "available_targets",
    "check_serving",
    "check_serving_ops",
    "export",
    "list_core_ops",
    "list_saved_model_ops",
    "load_op_set",
    "package_sagemaker",
    "predict_rest",
    "read_warmup_requests",
    "rest_request",
    "rest_request_inputs",
    "rest_response",
    "serving_root",
    "serving_signature_specs",
    "write_serving_config",
    "write_warmup_requests",
]
