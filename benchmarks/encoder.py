"""Strings -> sentence embeddings on CPU: our exported TF graph vs every CPU peer, one run.

Same texts, same model (the embedded all-MiniLM-L6-v2), same machine, one
configuration after the other:

- sentence-transformers `backend="torch"` fp32 (the reference vectors) and
  under `torch.autocast(bfloat16)`;
- ONNX Runtime fp32 and dynamic int8 (the model exported with
  `torch.onnx.export(dynamo=True)`, mean pooling and normalization as sentence-transformers
  does them; `backend="onnx"` itself needs `optimum-onnx`, which pins
  transformers < 4.58 and cannot install beside sentence-transformers 6);
- sentence-transformers `backend="openvino"` (OpenVINO's defaults: bf16
  inference on CPUs with AMX, fp32 otherwise) and the same IR quantized to
  int8 by NNCF (static, calibrated on 256 local texts);
- ours: `keras-rec export-hub` preprocess + encoder wrapped in one
  text -> embedding SavedModel, loaded the way TF Serving loads it (the
  Session loader) and called through `Session.make_callable`, each in its own
  process: float32; float32 under `TF_SET_ONEDNN_FPMATH_MODE=BF16`; float32
  with grappler's `auto_mixed_precision_onednn_bfloat16` (what TF Serving's
  `--mixed_precision=bfloat16` turns on); float32 with
  `TF_ENABLE_ONEDNN_OPTS=1` (oneDNN's graph rewrites, which TensorFlow turns
  on by itself only on Intel CPUs with AVX512-VNNI or newer); and the
  `--precision bfloat16` export;
- OpenVINO running our float32 encoder SavedModel (`openvino.convert_model`;
  the preprocessor does not convert and runs in TensorFlow in front).

Throughput: all `--texts` texts (10-60 words, cut from the sentiment tweets
with a fixed seed) in batches of 64, sorted by length first (as
`SentenceTransformer.encode` does); median of `--repeats`. Latency: one
12-word text per call, p50 and p99 over `--latency-calls` calls. Cosine: each
configuration's vectors against torch fp32's. `--profile` adds where our
float32 graph spends its time (per-op CPU time from a Session trace, grouped).

Targets (ours): float32 `throughput_vs_torch` >= 1.6 at cosine >= 0.99999;
bfloat16 `throughput_vs_openvino` >= 1.0 and `latency_p50_vs_torch` <= 0.5 at
cosine >= 0.999. Ends with one JSON line.

    pip install -e .[benchmarks]
    python benchmarks/encoder.py [--texts 1024] [--profile]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import subprocess
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ONE_TEXT = "the quick brown fox jumps over the lazy dog again and again today"
# Our configurations: name -> (export precision, extra environment, grappler bf16 rewrite).
TF_CONFIGS = {
    "ours_float32": ("float32", {}, False),
    "ours_float32_fpmath_bf16": ("float32", {"TF_SET_ONEDNN_FPMATH_MODE": "BF16"}, False),
    "ours_float32_grappler_bf16": ("float32", {}, True),
    # oneDNN's graph rewrites, on by default only on Intel CPUs with AVX512-VNNI or newer.
    "ours_float32_onednn_on": ("float32", {"TF_ENABLE_ONEDNN_OPTS": "1"}, False),
    "ours_bfloat16": ("bfloat16", {}, False),
}


def mixed_length_texts(count: int, seed: int = 0) -> list[str]:
    from keras_rec.data import sentiment_tweets

    words = " ".join(sentiment_tweets()["text"].tolist()).split()
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        length = rng.randint(10, 60)
        start = rng.randrange(len(words) - length)
        texts.append(" ".join(words[start : start + length]))
    return texts


def cpu_flags() -> list[str]:
    """The CPU's vector/matrix feature flags that decide bf16 and int8 speed."""
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("flags"):
                    wanted = ("avx2", "avx512", "amx", "vnni")
                    return sorted(f for f in line.split() if f.startswith(wanted))
    except OSError:
        pass
    return []


def in_length_batches(encode_batch, texts: list[str], batch_size: int, dim: int) -> np.ndarray:
    """Encodes `texts` longest first, `batch_size` at a time; rows in input order."""
    order = np.argsort([-len(text) for text in texts], kind="stable")
    vectors = np.zeros((len(texts), dim), np.float32)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        vectors[rows] = encode_batch([texts[i] for i in rows])
    return vectors


def measure(encode_batch, texts, args, dim) -> dict:
    """Throughput (median of repeats), single-text latency and the vectors."""
    in_length_batches(encode_batch, texts[:128], args.batch_size, dim)  # warm up
    seconds = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        vectors = in_length_batches(encode_batch, texts, args.batch_size, dim)
        seconds.append(time.perf_counter() - start)
    for _ in range(10):
        encode_batch([ONE_TEXT])
    latency = []
    for _ in range(args.latency_calls):
        start = time.perf_counter()
        encode_batch([ONE_TEXT])
        latency.append(time.perf_counter() - start)
    return {
        "texts_per_s": round(len(texts) / float(np.median(seconds)), 1),
        "latency_p50_ms": round(1000 * float(np.percentile(latency, 50)), 2),
        "latency_p99_ms": round(1000 * float(np.percentile(latency, 99)), 2),
        "vectors": vectors,
    }


def torch_rows(model, texts, args) -> dict:
    import torch

    dim = model.get_embedding_dimension()

    def fp32(batch):
        return model.encode(batch, batch_size=len(batch), show_progress_bar=False)

    def bf16(batch):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return model.encode(batch, batch_size=len(batch), show_progress_bar=False)

    return {
        "st_torch_float32": measure(fp32, texts, args, dim),
        "st_torch_bf16_autocast": measure(bf16, texts, args, dim),
    }


def onnx_rows(model, model_path, texts, args, work_dir) -> dict:
    """ONNX Runtime on the transformer exported by `torch.onnx.export`, fp32 and int8."""
    import onnxruntime
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    # torch.export-based (dynamo) export: the TorchScript exporter cannot trace
    # transformers 5's attention-mask helpers.
    transformer = AutoModel.from_pretrained(model_path).eval()
    tokenizer = model.tokenizer
    fp32_path = os.path.join(work_dir, "model.onnx")
    int8_path = os.path.join(work_dir, "model_int8.onnx")
    sample = tokenizer(["a b c", "d e f g"], padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]

    class LastHidden(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence", max=512)
    torch.onnx.export(
        LastHidden(transformer),
        tuple(sample[name] for name in names),
        fp32_path,
        input_names=names,
        output_names=["last_hidden_state"],
        dynamic_shapes={name: {0: batch, 1: sequence} for name in names},
        dynamo=True,
        opset_version=18,
    )
    quantize_dynamic(fp32_path, int8_path, weight_type=QuantType.QInt8)
    dim = model.get_embedding_dimension()
    rows = {}
    for name, path in (("onnxruntime_float32", fp32_path), ("onnxruntime_int8_dynamic", int8_path)):
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])

        def encode(batch, session=session):
            encoded = tokenizer(
                batch,
                padding=True,
                truncation=True,
                max_length=model.max_seq_length,
                return_tensors="np",
            )
            feeds = {key: encoded[key].astype(np.int64) for key in names}
            hidden = session.run(None, feeds)[0]
            mask = feeds["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
            return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

        rows[name] = measure(encode, texts, args, dim)
    return rows


def openvino_rows(model_path, texts, args) -> dict:
    """sentence-transformers on OpenVINO (its default precision), and NNCF int8."""
    import nncf
    from sentence_transformers import SentenceTransformer

    rows = {}
    ov_model = SentenceTransformer(
        model_path, device="cpu", backend="openvino", model_kwargs={"export": True}
    )
    dim = ov_model.get_embedding_dimension()

    def encode(batch):
        return ov_model.encode(batch, batch_size=len(batch), show_progress_bar=False)

    rows["st_openvino"] = measure(encode, texts, args, dim)
    auto_model = ov_model[0].auto_model
    rows["st_openvino"]["inference_precision"] = str(
        auto_model.request.get_property("INFERENCE_PRECISION_HINT")
    )
    calibration = mixed_length_texts(256, seed=1)
    samples = [
        dict(
            ov_model.tokenizer(
                calibration[i : i + 8], padding=True, truncation=True, return_tensors="np"
            )
        )
        for i in range(0, len(calibration), 8)
    ]
    quantized = nncf.quantize(
        auto_model.model,
        nncf.Dataset(samples),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(calibration),
    )
    auto_model.model = quantized
    auto_model.request = None
    auto_model.compile()
    rows["st_openvino_int8_static"] = measure(encode, texts, args, dim)
    return rows


def openvino_on_our_export_row(work_dir, texts, args) -> dict:
    """Our float32 encoder SavedModel converted by `openvino.convert_model`.

    The preprocessor does not convert (its lookup tables and TF Text ops have
    no OpenVINO rule), so it runs in TensorFlow in front.
    """
    import openvino
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    hub_dir = os.path.join(work_dir, "hub_float32")
    preprocess = tf.saved_model.load(os.path.join(hub_dir, "preprocess"))
    tokenize = tf.function(preprocess, input_signature=[tf.TensorSpec([None], tf.string)])
    compiled = openvino.Core().compile_model(
        openvino.convert_model(os.path.join(hub_dir, "encoder")),
        "CPU",
        {"PERFORMANCE_HINT": "LATENCY"},
    )
    request = compiled.create_infer_request()
    output = compiled.output("sentence_embedding")

    def encode(batch):
        inputs = tokenize(tf.constant(batch))
        return request.infer({key: value.numpy() for key, value in inputs.items()})[output]

    return {"openvino_on_our_encoder_savedmodel": measure(encode, texts, args, 384)}


def build_text_embedding(hub_dir: str, out_dir: str) -> None:
    """One SavedModel, `serving_default(text [None]) -> sentence_embedding`."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the preprocessor's ops)

    class TextEmbedding(tf.Module):
        def __init__(self):
            super().__init__()
            self.preprocess = tf.saved_model.load(os.path.join(hub_dir, "preprocess"))
            self.encoder = tf.saved_model.load(os.path.join(hub_dir, "encoder"))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(self, text):
            outputs = self.encoder(self.preprocess(text), training=False)
            return {"sentence_embedding": outputs["sentence_embedding"]}

    module = TextEmbedding()
    tf.saved_model.save(module, out_dir, signatures={"serving_default": module.serve})


def tf_worker(args) -> None:
    """Measures one of `TF_CONFIGS` through the Session loader; writes `--out`."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    precision, _, grappler_bf16 = TF_CONFIGS[args.tf_worker]
    texts = mixed_length_texts(args.texts)
    saved = os.path.join(args.work_dir, f"text_embedding_{precision}")
    if not os.path.isdir(saved):
        build_text_embedding(os.path.join(args.work_dir, f"hub_{precision}"), saved)
    config = tf.compat.v1.ConfigProto()
    if grappler_bf16:
        from tensorflow.core.protobuf import rewriter_config_pb2

        config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 = (
            rewriter_config_pb2.RewriterConfig.ON
        )
    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph, config=config)
    with graph.as_default():
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], saved)
    signature = meta.signature_def["serving_default"]
    text_name = signature.inputs["text"].name
    output_name = signature.outputs["sentence_embedding"].name
    call = session.make_callable(output_name, [text_name])

    def encode(batch):
        return call(np.array(batch, dtype=object))

    result = measure(encode, texts, args, 384)
    if args.profile:
        result["profile"] = profile_session(session, text_name, output_name, texts)
    np.save(args.out + ".npy", result.pop("vectors"))
    with open(args.out, "w") as file:
        json.dump(result, file)


# Op type -> profile group (layer norm's elementwise ops are shared with other
# elementwise work, so that share is approximate); anything else is "other ops".
OP_GROUPS = {
    "dense matmuls": ("MatMul", "_MklMatMul", "_FusedMatMul", "_MklFusedMatMul"),
    "attention matmuls": ("BatchMatMulV2", "BatchMatMulV3", "_MklBatchMatMulV2"),
    "softmax": ("Softmax", "_MklSoftmax"),
    "layer norm": ("Mean", "SquaredDifference", "Square", "Rsqrt", "Sub", "Mul", "AddV2"),
    "gelu": ("Erf", "Erfc", "Gelu"),
    "gathers and packing": (
        "GatherV2",
        "ResourceGather",
        "ScatterNd",
        "Where",
        "Reshape",
        "ConcatV2",
        "StridedSlice",
        "Transpose",
        "UnsortedSegmentSum",
        "UnsortedSegmentMax",
    ),
    "casts": ("Cast",),
}
TOKENIZER_OPS = ("TFText", "Regex", "Wordpiece", "NormalizeUTF8", "LookupTable")


def profile_session(session, text_name, output_name, texts) -> dict:
    """Per-op CPU time shares for one batch of 64 and for one text (Session trace)."""
    import tensorflow as tf

    options = tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE)
    report = {}
    for name, batch in (("batch_64", texts[:64]), ("one_text", [ONE_TEXT])):
        totals: dict[str, float] = collections.defaultdict(float)
        for _ in range(3):
            metadata = tf.compat.v1.RunMetadata()
            start = time.perf_counter()
            session.run(
                output_name,
                {text_name: np.array(batch, dtype=object)},
                options=options,
                run_metadata=metadata,
            )
            wall = time.perf_counter() - start
        ops = 0
        for device in metadata.step_stats.dev_stats:
            for node in device.node_stats:
                timeline = node.timeline_label
                op_type = timeline.split(" = ")[1].split("(")[0] if " = " in timeline else ""
                group = next((g for g, types in OP_GROUPS.items() if op_type in types), None)
                if group is None:
                    tokenizer = any(part in op_type for part in TOKENIZER_OPS)
                    group = "tokenizer (TF Text)" if tokenizer else "other ops"
                totals[group] += (node.op_end_rel_micros - node.op_start_rel_micros) / 1000.0
                ops += 1
        total = sum(totals.values())
        report[name] = {
            "wall_ms": round(1000 * wall, 2),
            "ops_run": ops,
            "op_ms_sum": round(total, 2),
            "shares": {
                k: round(v / total, 3) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])
            },
        }
    return report


def run_tf_configs(args, work_dir) -> dict:
    rows = {}
    for name, (_, environment, _) in TF_CONFIGS.items():
        out = os.path.join(work_dir, f"{name}.json")
        command = [
            sys.executable,
            __file__,
            "--tf-worker",
            name,
            "--work-dir",
            work_dir,
            "--out",
            out,
            "--texts",
            str(args.texts),
            "--batch-size",
            str(args.batch_size),
            "--repeats",
            str(args.repeats),
            "--latency-calls",
            str(args.latency_calls),
        ]
        if args.profile and name in ("ours_float32", "ours_bfloat16"):
            command.append("--profile")
        subprocess.run(command, check=True, env={**os.environ, **environment})
        with open(out) as file:
            rows[name] = json.load(file)
        rows[name]["vectors"] = np.load(out + ".npy")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--latency-calls", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="where our graph spends its time")
    parser.add_argument("--work-dir", default=None, help="keep exports here (reused if present)")
    parser.add_argument("--skip-tf", action="store_true", help="peers only (debugging)")
    parser.add_argument("--tf-worker", choices=sorted(TF_CONFIGS), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tf_worker:
        tf_worker(args)
        return

    from keras_rec.embeddings.sentence_encoder import embedded_model_path, load_sentence_transformer
    from keras_rec.hub.export_hub import export_hub

    work_dir = args.work_dir or tempfile.mkdtemp(prefix="encoder_bench_")
    os.makedirs(work_dir, exist_ok=True)
    model = load_sentence_transformer(None, device="cpu")
    for precision in ("float32", "bfloat16"):
        hub_dir = os.path.join(work_dir, f"hub_{precision}")
        if not os.path.isdir(hub_dir):
            export_hub(model, hub_dir, precision=precision)
    texts = mixed_length_texts(args.texts)

    rows = {} if args.skip_tf else run_tf_configs(args, work_dir)
    rows.update(torch_rows(model, texts, args))
    rows.update(onnx_rows(model, embedded_model_path(), texts, args, work_dir))
    rows.update(openvino_rows(embedded_model_path(), texts, args))
    rows.update(openvino_on_our_export_row(work_dir, texts, args))

    reference = rows["st_torch_float32"]["vectors"]
    torch_row, openvino_row = rows["st_torch_float32"], rows["st_openvino"]
    table = {}
    for name, row in rows.items():
        vectors = row.pop("vectors")
        cosine = np.sum(vectors * reference, axis=1) / (
            np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference, axis=1)
        )
        row["min_cosine"] = round(float(cosine.min()), 6)
        row["throughput_vs_torch"] = round(row["texts_per_s"] / torch_row["texts_per_s"], 3)
        row["throughput_vs_openvino"] = round(row["texts_per_s"] / openvino_row["texts_per_s"], 3)
        row["latency_p50_vs_torch"] = round(row["latency_p50_ms"] / torch_row["latency_p50_ms"], 3)
        table[name] = row
    print(
        f"{'configuration':32s} {'texts/s':>8s} {'x torch':>8s} {'x OV':>6s} "
        f"{'p50 ms':>7s} {'p99 ms':>7s} {'min cos':>9s}"
    )
    for name, row in table.items():
        print(
            f"{name:32s} {row['texts_per_s']:8.1f} {row['throughput_vs_torch']:8.2f} "
            f"{row['throughput_vs_openvino']:6.2f} {row['latency_p50_ms']:7.2f} "
            f"{row['latency_p99_ms']:7.2f} {row['min_cosine']:9.6f}"
        )
    for name in ("ours_float32", "ours_bfloat16"):
        if "profile" in table.get(name, {}):
            print(name, "profile:", json.dumps(table[name]["profile"]))
    if args.skip_tf:
        return
    ours32, ours16 = table["ours_float32"], table["ours_bfloat16"]
    result = {
        "benchmark": "encoder",
        "cpu_flags": cpu_flags(),
        "texts": len(texts),
        "batch_size": args.batch_size,
        "rows": table,
        "targets": {
            "float32_throughput_vs_torch>=1.6": ours32["throughput_vs_torch"] >= 1.6,
            "float32_min_cosine>=0.99999": ours32["min_cosine"] >= 0.99999,
            "bfloat16_throughput_vs_openvino>=1.0": ours16["throughput_vs_openvino"] >= 1.0,
            "bfloat16_latency_p50_vs_torch<=0.5": ours16["latency_p50_vs_torch"] <= 0.5,
            "bfloat16_min_cosine>=0.999": ours16["min_cosine"] >= 0.999,
        },
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
