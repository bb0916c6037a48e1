"""`keras_rec.serving.export`: versioned atomic exports that TF Serving can load."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_rec.cli import main
from keras_rec.hub import HubLayer
from keras_rec.serving.fresh_process import ServingCheckError
from keras_rec.serving.op_check import ServingCompatibilityError
from keras_rec.serving.rest_examples import REST_FILES, predict_rest, rest_mismatches
from keras_rec.serving.saved_model_export import export
from keras_rec.serving.serving_check import check_serving
from keras_rec.serving.versioned_dir import list_versions
from keras_rec.serving.warmup_requests import read_warmup_requests

TEXTS = ["a great movie", "terrible acting", "", "   ", "naïve café 東京 🎬 " * 200, "ok"]


def _text_classifier(hub_dir):
    text = keras.Input(shape=(), dtype="string", name="text")
    tokens = HubLayer(os.path.join(hub_dir, "preprocess"))(text)
    embedding = HubLayer(
        os.path.join(hub_dir, "encoder"), trainable=True, output_key="sentence_embedding"
    )(tokens)
    probabilities = keras.layers.Dense(3, activation="softmax", name="probabilities")(embedding)
    return keras.Model(text, probabilities)


def _two_input_model():
    dense = keras.Input(shape=(4,), name="features")
    ids = keras.Input(shape=(), dtype="int64", name="item_id")
    embedded = keras.layers.Embedding(10, 4)(ids)
    hidden = keras.layers.Dense(8, activation="relu")(keras.layers.Concatenate()([dense, embedded]))
    score = keras.layers.Dense(1, name="score")(hidden)
    logits = keras.layers.Dense(2, name="logits")(hidden)
    return keras.Model([dense, ids], [score, logits])


def _two_input_examples(rows=5):
    rng = np.random.default_rng(0)
    return {
        "features": rng.normal(size=(rows, 4)).astype("float32"),
        "item_id": np.arange(rows, dtype="int64") % 10,
    }


@pytest.fixture(scope="module")
def text_export(tiny_hub_dir, tmp_path_factory):
    """A fine-tuned tiny text classifier exported once: (model, result)."""
    model = _text_classifier(tiny_hub_dir)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(tf.constant(TEXTS), np.array([2, 0, 1, 1, 2, 1]), epochs=1, verbose=0)
    base = str(tmp_path_factory.mktemp("saved_models"))
    return model, export(model, base, "sentiment", examples=TEXTS, chief=True)


def test_text_model_export_is_checked_and_published(text_export):
    model, result = text_export
    assert (result.version, result.written) == (1, True)
    assert result.path.endswith(os.path.join("sentiment", "1"))
    assert os.path.isfile(os.path.join(result.path, "saved_model.pb"))
    assert result.op_check.ok and result.op_check.target == "tfserving-2.19"
    checked = result.serving_check
    assert checked["ok"] and checked["batch_sizes"] == [len(TEXTS), 1]
    assert checked["loaders"] == ["session", "object_graph"]
    assert checked["warmup_requests"] == 4 and checked["rest_examples"] == ["inputs", "instances"]
    assert checked["outputs"] == ["probabilities"] and checked["op_libraries"] > 0
    # Only the version directory (and the lock file) is visible to TF Serving.
    entries = sorted(os.listdir(os.path.dirname(result.path)))
    assert entries == [".keras_rec_export.lock", "1"]
    metadata = json.load(open(os.path.join(result.path, "assets.extra/keras_rec_export.json")))
    assert metadata["signatures"]["serving_default"]["inputs"] == {
        "text": {"dtype": "string", "shape": [None]}
    }


def test_weights_are_stored_once_without_optimizer_state(text_export):
    model, result = text_export
    weight_bytes = sum(np.asarray(w).nbytes for w in model.weights)
    variables_dir = os.path.join(result.path, "variables")
    stored = sum(
        os.path.getsize(os.path.join(variables_dir, name)) for name in os.listdir(variables_dir)
    )
    # AdamW keeps 2 slots per weight: tracking the model would store ~3x.
    assert weight_bytes <= stored < 1.2 * weight_bytes + 65536, (stored, weight_bytes)


def test_rest_examples_round_trip_through_the_loaded_signature(text_export):
    _, result = text_export
    signature = tf.saved_model.load(result.path).signatures["serving_default"]
    extra = os.path.join(result.path, "assets.extra")
    for style, (request_file, response_file) in REST_FILES.items():
        request = json.load(open(os.path.join(extra, request_file)))
        response = json.load(open(os.path.join(extra, response_file)))
        assert request["signature_name"] == "serving_default"
        assert (style in request) and len(
            request[style] if style == "instances" else request[style]["text"]
        ) == len(TEXTS)
        assert rest_mismatches(predict_rest(signature, request), response) == []
    # A changed response would be caught.
    response["outputs"][0][0] += 0.01
    assert rest_mismatches(predict_rest(signature, request), response) != []


def test_warmup_requests_parse_and_replay(text_export):
    model, result = text_export
    requests = read_warmup_requests(result.path)
    assert [len(inputs["text"]) for _, inputs in requests] == [1, 2, 4, 6]
    signature = tf.saved_model.load(result.path).signatures["serving_default"]
    for signature_name, inputs in requests:
        assert signature_name == "serving_default"
        served = signature(text=tf.constant(inputs["text"]))["probabilities"].numpy()
        np.testing.assert_allclose(served, model(tf.constant(inputs["text"])), atol=1e-5)


def test_multi_input_model_rest_and_fresh_process(tmp_path):
    model = _two_input_model()
    examples = _two_input_examples()
    result = export(model, tmp_path, "ranker", examples=examples, chief=True)
    assert result.serving_check["outputs"] == ["logits", "score"]
    assert result.serving_check["op_libraries"] == 0  # core ops only
    signature = tf.saved_model.load(result.path).signatures["serving_default"]
    extra = os.path.join(result.path, "assets.extra")
    request = json.load(open(os.path.join(extra, "rest_request_instances.json")))
    assert set(request["instances"][0]) == {"features", "item_id"}
    response = json.load(open(os.path.join(extra, "rest_response_instances.json")))
    assert set(response["predictions"][0]) == {"logits", "score"}
    assert rest_mismatches(predict_rest(signature, request), response) == []
    expected = model([examples["features"], examples["item_id"]])[1]
    np.testing.assert_allclose(
        [row["logits"] for row in response["predictions"]], expected, atol=1e-5
    )


def test_versions_only_grow_and_are_never_overwritten(tmp_path):
    model, examples = _two_input_model(), _two_input_examples()

    def run(**kwargs):
        return export(
            model,
            tmp_path,
            "m",
            examples=examples,
            chief=True,
            serving_check=False,
            warmup=False,
            **kwargs,
        )

    assert [run().version for _ in range(3)] == [1, 2, 3]
    os.rename(tmp_path / "m" / "2", tmp_path / "removed")
    os.rename(tmp_path / "m" / "3", tmp_path / "removed3")
    os.makedirs(tmp_path / "m" / "3")
    open(tmp_path / "m" / "3" / "saved_model.pb", "wb").close()
    assert run().version == 4  # after the latest, never reusing 2
    with pytest.raises(FileExistsError, match="never overwritten"):
        run(version=4)
    with pytest.raises(ValueError, match="greater than the latest version 4"):
        run(version=2)
    assert run(version=10).version == 10
    assert list_versions(str(tmp_path / "m")) == [1, 3, 4, 10]


_KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np, keras, tensorflow as tf
    from keras_rec.serving import saved_model_export as export_module, versioned_dir
    base, point = sys.argv[1], sys.argv[2]

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    if point == "during_save":
        original = tf.saved_model.save
        def save(obj, path, **kwargs):
            original(obj, path, **kwargs)
            os.remove(os.path.join(path, "saved_model.pb"))  # as if cut mid-write
            die()
        tf.saved_model.save = save
    elif point == "before_rename":
        versioned_dir.os.rename = die
    x = keras.Input(shape=(2,), name="x")
    model = keras.Model(x, keras.layers.Dense(1, name="y")(x))
    export_module.export(model, base, "m", examples={"x": np.ones((2, 2), "float32")},
                         chief=True, serving_check=False)
    """
)


@pytest.mark.parametrize("point", ["during_save", "before_rename"])
def test_a_killed_export_leaves_no_version_and_a_rerun_works(tmp_path, point):
    process = subprocess.run(
        [sys.executable, "-c", _KILL_SCRIPT, str(tmp_path), point],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert process.returncode == -9, process.stderr[-2000:]
    leftovers = os.listdir(tmp_path / "m")
    assert list_versions(str(tmp_path / "m")) == []
    assert any(name.startswith(".tmp-") for name in leftovers)  # ignored by TF Serving

    x = keras.Input(shape=(2,), name="x")
    model = keras.Model(x, keras.layers.Dense(1, name="y")(x))
    result = export(
        model,
        tmp_path,
        "m",
        examples={"x": np.ones((2, 2), "float32")},
        chief=True,
        serving_check=False,
    )
    assert result.version == 1
    assert sorted(os.listdir(tmp_path / "m")) == [".keras_rec_export.lock", "1"]


class _PythonOpModule(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def serve(self, x):
        return {"y": tf.py_function(lambda v: v * 2.0, [x], tf.float32)}


def test_an_op_outside_the_target_is_reported_and_nothing_is_published(tmp_path):
    module = _PythonOpModule()
    with pytest.raises(ServingCompatibilityError, match="EagerPyFunc"):
        export(
            module,
            tmp_path,
            "py",
            examples=[1.0, 2.0],
            signatures={"serving_default": module.serve},
            chief=True,
        )
    assert os.listdir(tmp_path / "py") == [".keras_rec_export.lock"] or not any(
        name.isdigit() or name.startswith(".tmp-") for name in os.listdir(tmp_path / "py")
    )


def test_hub_encoder_module_exports_with_tf_text_kernels(tiny_hub_dir, tmp_path):
    module = tf.Module()
    module.preprocess = tf.saved_model.load(os.path.join(tiny_hub_dir, "preprocess"))
    module.encoder = tf.saved_model.load(os.path.join(tiny_hub_dir, "encoder"))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def embed(text):
        outputs = module.encoder(module.preprocess(text), training=False)
        return {"embedding": outputs["sentence_embedding"]}

    result = export(
        module,
        tmp_path,
        "encoder",
        examples=TEXTS,
        signatures={"serving_default": embed},
        target="tfserving-2.20",
        chief=True,
    )
    assert result.op_check.target == "tfserving-2.20"
    assert result.serving_check["ok"] and result.serving_check["op_libraries"] > 0
    assert "WordpieceTokenizeWithOffsets" in result.op_check.ops


def test_serving_check_reports_a_mismatch(text_export):
    _, result = text_export
    inputs = {"text": np.array([b"good", b"bad"], dtype=object)}
    wrong = {"probabilities": np.zeros((2, 3), np.float32)}
    with pytest.raises(ServingCheckError, match=r"\[session\] batch 2: 'probabilities': max abs"):
        check_serving(result.path, {2: inputs}, {2: wrong})


def test_non_chief_worker_writes_nothing(tmp_path):
    x = keras.Input(shape=(2,), name="x")
    model = keras.Model(x, keras.layers.Dense(1, name="y")(x))
    result = export(model, tmp_path, "m", examples={"x": np.ones((2, 2), "float32")}, chief=False)
    assert (result.written, result.path, result.version) == (False, None, None)
    assert not os.path.exists(tmp_path / "m")


def test_chief_is_read_from_tf_config(tmp_path, monkeypatch):
    monkeypatch.setenv(
        "TF_CONFIG",
        json.dumps({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}),
    )
    x = keras.Input(shape=(2,), name="x")
    model = keras.Model(x, keras.layers.Dense(1, name="y")(x))
    result = export(model, tmp_path, "m", examples={"x": np.ones((2, 2), "float32")})
    assert not result.written and not os.path.exists(tmp_path / "m")


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"model_name": "a/b"}, ValueError, "`model_name` must start"),
        ({"base_dir": "s3://bucket/models"}, ValueError, "must be a local directory"),
        ({"examples": {"x": np.ones((1, 2), "float32")}}, ValueError, "at least 2 rows"),
        ({"examples": {"z": np.ones((2, 2), "float32")}}, ValueError, "Missing: \\['x'\\]"),
        ({"examples": {"x": np.ones((2, 3), "float32")}}, ValueError, "has shape \\(2, 3\\)"),
        ({"version": 0}, ValueError, "`version` must be a positive integer"),
    ],
)
def test_bad_arguments_fail_before_writing(tmp_path, kwargs, error, match):
    x = keras.Input(shape=(2,), name="x")
    model = keras.Model(x, keras.layers.Dense(1, name="y")(x))
    arguments = {
        "base_dir": str(tmp_path),
        "model_name": "m",
        "examples": {"x": np.ones((2, 2), "float32")},
        **kwargs,
    }
    with pytest.raises(error, match=match):
        export(model, chief=True, **arguments)
    assert (
        not any(name.isdigit() for name in os.listdir(tmp_path / "m"))
        if os.path.isdir(tmp_path / "m")
        else True
    )


# === TF Serving's loader path ===


def _lookup_model():
    """Dense, Embedding and StringLookup (a table with a vocabulary) in one functional model."""
    genre = keras.Input(shape=(), dtype="string", name="genre")
    rows = keras.layers.StringLookup(vocabulary=["drama", "comedy", "horror"], name="lookup")(genre)
    embedded = keras.layers.Embedding(4, 3, name="embedding")(rows)
    score = keras.layers.Dense(1, name="score")(keras.layers.Dense(5, name="hidden")(embedded))
    model = keras.Model(genre, {"score": score})
    model.compile(optimizer="adam", loss="mse")
    model.fit(tf.constant(["drama", "comedy", "x"]), np.ones((3, 1)), epochs=1, verbose=0)
    return model


GENRES = ["drama", "horror", "unknown genre", "comedy"]


@pytest.fixture(scope="module")
def lookup_export(tmp_path_factory):
    model = _lookup_model()
    base = str(tmp_path_factory.mktemp("lookup_models"))
    return model, export(model, base, "genre_score", examples=GENRES, chief=True)


def test_keras_model_answers_through_the_session_loader(lookup_export):
    model, result = lookup_export
    checked = result.serving_check
    assert checked["loaders"] == ["session", "object_graph"] and checked["op_libraries"] == 0
    assert checked["warmup_requests"] == 3 and checked["max_abs_diff"] <= 1e-5
    # The check's own Session path, run here by hand as TF Serving would.
    graph = tf.Graph()
    with tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], result.path)
        signature = meta_graph.signature_def["serving_default"]
        served = session.run(
            signature.outputs["score"].name,
            {signature.inputs["genre"].name: np.array([g.encode() for g in GENRES], object)},
        )
    np.testing.assert_allclose(served, model(tf.constant(GENRES))["score"], atol=1e-6)


def test_saved_model_cli_run_answers_like_the_model(lookup_export, tmp_path):
    model, result = lookup_export
    np.save(tmp_path / "genre.npy", np.array([g.encode() for g in GENRES]))
    saved_model_cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    process = subprocess.run(
        [
            saved_model_cli,
            "run",
            "--dir",
            result.path,
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--inputs",
            f"genre={tmp_path / 'genre.npy'}",
            "--outdir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert process.returncode == 0, process.stderr[-3000:]
    served = np.load(tmp_path / "out" / "score.npy")
    np.testing.assert_allclose(served, model(tf.constant(GENRES))["score"], atol=1e-6)


def test_the_check_refuses_a_module_holding_keras_layers(tmp_path):
    """The save that TF Serving cannot serve (tensorflow/tensorflow#72963) is caught."""
    model = _lookup_model()
    module = tf.Module()
    module.layers = list(model.layers)  # Keras 3 layers, not their tf.Variables.

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="genre")])
    def serve(genre):
        return {"score": model(genre)["score"]}

    path = str(tmp_path / "broken")
    tf.saved_model.save(module, path, signatures={"serving_default": serve})
    with pytest.raises(ServingCheckError, match=r"(?s)\[session\] made-up.*Could not find var"):
        check_serving(path)
    assert main(["check-serving", path]) == 1  # what a user runs on it
    # The same model from the exporter's root passes the same check (run by `export`).
    fixed = export(model, tmp_path, "fixed", examples=GENRES, chief=True, warmup=False)
    assert fixed.serving_check["ok"] and fixed.serving_check["batch_sizes"] == [len(GENRES), 1]
    assert fixed.serving_check["loaders"] == ["session", "object_graph"]


def test_check_serving_command_replays_warmup_and_rest_files(text_export, capsys):
    _, result = text_export
    assert main(["check-serving", result.path]) == 0
    report = json.loads(capsys.readouterr().out)["serving_check"]
    assert report["warmup_requests"] == 4 and report["rest_examples"] == ["inputs", "instances"]
    assert report["batch_sizes"] == [len(TEXTS), 1] and report["op_libraries"] > 0


def test_a_failing_warmup_record_fails_the_check(lookup_export, tmp_path):
    import shutil

    from keras_rec.serving.warmup_requests import write_warmup_requests

    _, result = lookup_export
    copy = str(tmp_path / "copy")
    shutil.copytree(result.path, copy)
    # A record feeding a float where the signature takes strings: TF Serving
    # refuses the whole version when a warmup request fails.
    write_warmup_requests(copy, "genre_score", {"genre": np.ones(2, np.float32)})
    with pytest.raises(ServingCheckError, match="warmup record 0 failed"):
        check_serving(copy)


def test_an_export_failing_the_serving_check_is_not_published(tmp_path, monkeypatch):
    from keras_rec.serving import saved_model_export

    def layers_root(exported, functions):  # today's bug: Keras layers, not their variables
        root = tf.Module()
        root.layers = list(exported.layers)
        return root

    monkeypatch.setattr(saved_model_export, "serving_root", layers_root)
    with pytest.raises(ServingCheckError, match="Could not find variable"):
        export(_lookup_model(), tmp_path, "broken", examples=GENRES, chief=True, warmup=False)
    assert not any(
        name.isdigit() or name.startswith(".tmp-") for name in os.listdir(tmp_path / "broken")
    )


def test_staged_exports_are_checked_in_one_process_and_published_together(tmp_path, monkeypatch):
    """A training run's exports: one fresh process checks them all; one failing check
    publishes none of them."""
    from keras_rec.serving import saved_model_export, serving_check
    from keras_rec.serving.saved_model_export import publish_exports, stage_export

    processes = []
    answer_each = serving_check.answer_each_in_fresh_process

    def counting(models, *args, **kwargs):
        processes.append(sorted(os.path.basename(os.path.dirname(p)) for p, _ in models.values()))
        return answer_each(models, *args, **kwargs)

    monkeypatch.setattr(serving_check, "answer_each_in_fresh_process", counting)
    two_input = _two_input_model()
    staged = [
        stage_export(_lookup_model(), tmp_path, "lookup", examples=GENRES, chief=True),
        stage_export(two_input, tmp_path, "two_inputs", examples=_two_input_examples(),
                     chief=True, version=7),
    ]  # fmt: skip
    assert not any(name.isdigit() for name in os.listdir(tmp_path / "lookup"))
    results = publish_exports(staged)
    assert processes == [["lookup", "two_inputs"]]  # one process for both
    assert [(r.model_name, r.version) for r in results] == [("lookup", 1), ("two_inputs", 7)]
    assert all(r.serving_check["ok"] and os.path.isdir(r.path) for r in results)
    assert results[1].serving_check["batch_sizes"] == [5, 1]

    # The second one fails its check (its root keeps Keras layers, not their variables):
    # neither is published, no temporary directory is left.
    def layers_root(exported, functions):
        root = tf.Module()
        root.layers = list(exported.layers)
        return root

    good = stage_export(_lookup_model(), tmp_path, "lookup", examples=GENRES, chief=True)
    monkeypatch.setattr(saved_model_export, "serving_root", layers_root)
    bad = stage_export(two_input, tmp_path, "two_inputs", examples=_two_input_examples(),
                       chief=True, warmup=False)  # fmt: skip
    with pytest.raises(ServingCheckError, match=r"(?s)two_inputs.*Could not find variable"):
        publish_exports([good, bad])
    assert list_versions(str(tmp_path / "lookup")) == [1]
    assert list_versions(str(tmp_path / "two_inputs")) == [7]
    for name in ("lookup", "two_inputs"):
        assert not [e for e in os.listdir(tmp_path / name) if e.startswith(".tmp-")]


def test_public_names_resolve_whatever_was_imported_first():
    import keras_rec.serving as serving
    from keras_rec.serving import export_root, saved_model_export  # noqa: F401 - submodules

    for name in serving.__all__:
        value = getattr(serving, name)
        assert not isinstance(value, type(serving)), f"keras_rec.serving.{name} is a module"
