"""Tests for the TF Serving op check: packaged op sets and SavedModel scans."""

from __future__ import annotations

import importlib.resources

import pytest
import tensorflow as tf

from keras_rec import serving

TEXT_OPS = [
    "NormalizeUTF8",
    "CaseFoldUTF8",
    "RegexSplitWithOffsets",
    "WordpieceTokenizeWithOffsets",
]
# In TF Text since 2.13: TF Serving 2.12-2.19 links TF Text 2.12.1.
NEW_TEXT_OPS = ["TFText>RoundRobinTrim", "TFText>RoundRobinGenerateMasks", "TFText>Utf8Binarize"]


def _save(module: tf.Module, path) -> str:
    tf.saved_model.save(module, str(path))
    return str(path)


@pytest.fixture(scope="module")
def core_model(tmp_path_factory) -> str:
    class Scale(tf.Module):
        def __init__(self):
            super().__init__()
            self.weight = tf.Variable(2.0)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def serve(self, x):
            return {"y": tf.nn.relu(x * self.weight + 1.0)}

    module = Scale()
    return _save(module, tmp_path_factory.mktemp("core") / "model")


@pytest.fixture(scope="module")
def trimmer_model(tmp_path_factory) -> str:
    import tensorflow_text as tf_text

    class Trim(tf.Module):
        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.int64),
                tf.TensorSpec([None], tf.int64),
                tf.TensorSpec([None], tf.int64),
                tf.TensorSpec([None], tf.int64),
            ]
        )
        def serve(self, first, first_lengths, second, second_lengths):
            segments = [
                tf.RaggedTensor.from_row_lengths(first, first_lengths),
                tf.RaggedTensor.from_row_lengths(second, second_lengths),
            ]
            trimmed = tf_text.RoundRobinTrimmer(max_seq_length=4).trim(segments)
            return {"first": trimmed[0].flat_values, "second": trimmed[1].flat_values}

    return _save(Trim(), tmp_path_factory.mktemp("trimmer") / "model")


def test_data_files_are_packaged_and_parse():
    directory = importlib.resources.files("keras_rec.serving").joinpath("op_sets")
    assert directory.joinpath("tfserving-2.19.txt").is_file()
    assert {"tfserving-2.19", "tfserving-2.20"} <= set(serving.available_targets())
    for target in serving.available_targets():
        op_set = serving.load_op_set(target)
        # ~1,900 core ops plus ~50 TF Text ops; a truncated file would fail here.
        assert len(op_set.ops) > 1500, target
        assert {"MatMul", "StatefulPartitionedCall", "While"} <= op_set.ops
        assert set(TEXT_OPS) <= op_set.ops, target
        assert op_set.versions["tensorflow"].startswith(target.split("-")[1] + ".")


def test_op_set_versions():
    assert serving.load_op_set("tfserving-2.19").versions["tensorflow_text"] == "2.12.1"
    assert serving.load_op_set("tfserving-2.20").versions["tensorflow_text"].startswith("2.20.")


def test_tfserving_2_19_lacks_newer_tf_text_ops():
    ops_2_19 = serving.load_op_set("tfserving-2.19").ops
    ops_2_20 = serving.load_op_set("tfserving-2.20").ops
    for op in NEW_TEXT_OPS:
        assert op not in ops_2_19
        assert op in ops_2_20


def test_unknown_target():
    with pytest.raises(ValueError, match=r"`target` must be one of \[.*'tfserving-2.19'"):
        serving.load_op_set("tfserving-1.15")


@pytest.mark.parametrize("target", ["tfserving-2.19", "tfserving-2.20"])
def test_core_model_passes(core_model, target):
    result = serving.assert_servable(core_model, target=target)
    assert result.ok and result.missing == {}
    assert {"Mul", "AddV2", "Relu", "StatefulPartitionedCall"} <= set(result.ops)


def test_round_robin_trimmer_fails_2_19(trimmer_model):
    result = serving.check_serving_ops(trimmer_model, "tfserving-2.19")
    assert not result.ok
    assert list(result.missing) == ["TFText>RoundRobinTrim"]
    places = result.missing["TFText>RoundRobinTrim"]
    assert places and all(place.startswith("function __inference_serve") for place in places)
    with pytest.raises(serving.ServingCompatibilityError) as info:
        serving.assert_servable(trimmer_model, target="tfserving-2.19")
    message = str(info.value)
    assert "TFText>RoundRobinTrim" in message
    assert "tfserving-2.19 (TensorFlow 2.19.1, TF Text 2.12.1)" in message
    assert "available in tfserving-2.20" in message
    assert "truncate with core ops" in message
    assert isinstance(info.value, ValueError)


def test_round_robin_trimmer_passes_2_20(trimmer_model):
    assert serving.check_serving_ops(trimmer_model, "tfserving-2.20").ok


def test_ops_in_nested_functions_and_loop_bodies(tmp_path):
    @tf.function
    def inner(text):
        def body(i, acc):
            # `StringUpper` and the Python op only occur inside the loop body.
            upper = tf.strings.upper(acc)
            echo = tf.py_function(lambda t: t, [upper], tf.string)
            return i + 1, tf.ensure_shape(echo, upper.shape)

        return tf.while_loop(lambda i, _: i < 2, body, [tf.constant(0), text])[1]

    class Outer(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
        def serve(self, text):
            return {"text": inner(text)}

    path = _save(Outer(), tmp_path / "model")
    result = serving.check_serving_ops(path, "tfserving-2.20")
    assert "StringUpper" in result.ops and "While" in result.ops
    # A core op, but its kernel runs Python: no model server can run it.
    assert list(result.missing) == ["EagerPyFunc"]
    (place,) = result.missing["EagerPyFunc"]
    assert place.startswith("function while_body_")


def test_ops_newer_than_the_server_are_reported(tmp_path):
    # Diffing the op sets against the TF 2.21 registry: DecodeWebP is registered
    # since TF 2.20, DecodeJxl since TF 2.21 (neither is in TF Text).
    newer_than_2_19 = set(dir(tf.raw_ops)) - serving.load_op_set("tfserving-2.19").ops
    newer_than_2_20 = set(dir(tf.raw_ops)) - serving.load_op_set("tfserving-2.20").ops
    assert {"DecodeWebP", "DecodeJxl"} <= newer_than_2_19
    assert "DecodeJxl" in newer_than_2_20 and "DecodeWebP" not in newer_than_2_20

    class Decode(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
        def serve(self, contents):
            return {
                "webp": tf.io.decode_webp(contents),
                "jxl": tf.raw_ops.DecodeJxl(contents=contents),
            }

    path = _save(Decode(), tmp_path / "model")
    assert list(serving.check_serving_ops(path, "tfserving-2.19").missing) == [
        "DecodeJxl",
        "DecodeWebP",
    ]
    result = serving.check_serving_ops(path, "tfserving-2.20")
    assert list(result.missing) == ["DecodeJxl"]
    assert "neither TensorFlow 2.20.0 nor TF Text 2.20.0 registers it" in result.explain()


def test_check_serving_command_exit_codes(core_model, trimmer_model, capsys):
    from keras_rec.cli import main

    targets = ["--target", "tfserving-2.19", "--target", "tfserving-2.20"]
    assert main(["check-serving", core_model, *targets]) == 0
    err = capsys.readouterr().err
    assert "OK: loads through TF Serving's Session loader" in err  # made-up inputs
    assert main(["check-serving", trimmer_model, "--list-ops", "--ops-only"]) == 1
    captured = capsys.readouterr()
    assert "TFText>RoundRobinTrim  <- missing" in captured.err and "FAIL:" in captured.err
    assert '"tfserving-2.19": ["TFText>RoundRobinTrim"]' in captured.out
    assert main(["check-serving", trimmer_model, "--target", "tfserving-2.20", "--ops-only"]) == 0
    assert main(["check-serving", str(trimmer_model) + "-nope", "--ops-only"]) == 2


def test_unreadable_saved_model(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"\xff\xff\xff not a proto")
    with pytest.raises(ValueError, match="`path` must be a SavedModel"):
        serving.check_serving_ops(str(tmp_path))
