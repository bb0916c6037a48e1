"""Serving: versioned exports for TF Serving, op checks, configs and packages.

Modules load on first use (`keras_rec.lazy_exports`): `import keras_rec.serving`
alone does not import TensorFlow.
"""

from keras_rec.lazy_exports import lazy_exports

_EXPORTS = {
    "DEFAULT_TARGET": "op_check",
    "ExportResult": "saved_model_export",
    "LOADERS": "fresh_process",
    "OpCheckResult": "op_check",
    "OpSet": "op_check",
    "ServingCheckError": "fresh_process",
    "ServingCheck": "serving_check",
    "ServingCompatibilityError": "op_check",
    "StagedExport": "saved_model_export",
    "answer_each_in_fresh_process": "fresh_process",
    "answer_in_fresh_process": "fresh_process",
    "assert_servable": "op_check",
    "available_targets": "op_check",
    "check_serving": "serving_check",
    "check_serving_all": "serving_check",
    "check_serving_ops": "op_check",
    "export": "saved_model_export",
    "list_core_ops": "saved_model_ops",
    "list_saved_model_ops": "saved_model_ops",
    "load_op_set": "op_check",
    "package_sagemaker": "sagemaker_package",
    "predict_rest": "rest_examples",
    "publish_exports": "saved_model_export",
    "read_warmup_requests": "warmup_requests",
    "rest_request": "rest_examples",
    "rest_request_inputs": "rest_examples",
    "rest_response": "rest_examples",
    "serving_root": "export_root",
    "serving_signature_specs": "saved_model_ops",
    "stage_export": "saved_model_export",
    "write_serving_config": "serving_config",
    "write_warmup_requests": "warmup_requests",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
