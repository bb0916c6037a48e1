"""The `keras-rec` command line.

Each subcommand parses its arguments and makes one call into the package.
Every command ends by printing one line of JSON with its figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from keras_rec.precision import PRECISIONS


def _add_encoder_arguments(parser: argparse.ArgumentParser) -> None:
    from keras_rec.embeddings.sentence_encoder import BACKENDS

    parser.add_argument(
        "--model",
        default=None,
        help="sentence-transformer: local path or Hugging Face id "
        "(default: all-MiniLM-L6-v2, embedded, offline)",
    )
    parser.add_argument(
        "--cache",
        default=None,
        help="embedding cache root: a directory or fsspec URL such as s3://bucket/prefix "
        "(default: $KERAS_REC_HOME/embeddings or ~/.keras_rec/embeddings)",
    )
    parser.add_argument(
        "--hub-dir",
        default=None,
        help="encode with these `keras-rec export-hub` TF Hub modules instead of the "
        "sentence-transformer (TensorFlow only; own cache namespace)",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-seq-length", type=int, default=None)
    parser.add_argument("--normalize", action="store_true", help="L2-normalize the vectors")
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda")
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=BACKENDS[0],
        help="what runs the model: torch, or openvino/onnx (converted once, kept under "
        "$KERAS_REC_HOME/converted; their vectors get their own cache namespace)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=PRECISIONS[0],
        help="compute precision: torch bfloat16 autocast, or OpenVINO's bf16 hint "
        "(vectors are float32 either way)",
    )


def _encoder_settings(args: argparse.Namespace):
    from keras_rec.embeddings.encoder_settings import EncoderSettings

    return EncoderSettings(
        model=args.model,
        hub_dir=args.hub_dir,
        batch_size=args.batch_size,
        max_seq_length=args.max_seq_length,
        normalize=args.normalize,
        device=args.device,
        backend=args.backend,
        precision=args.precision,
    )


def _build_encoder(args: argparse.Namespace):
    from keras_rec.embeddings import CachedEncoder

    return CachedEncoder(_encoder_settings(args).build(), cache=args.cache)


def _run_embed(args: argparse.Namespace) -> dict:
    from keras_rec.embeddings.embed_table import embed_table

    if args.runner is not None:
        return _run_embed_on_beam(args)
    if args.arguments:
        raise SystemExit(
            f"keras-rec embed: unrecognized arguments: {' '.join(args.arguments)} "
            "(Beam pipeline options are taken with --runner)"
        )
    if args.output is None and args.shard is None:
        raise SystemExit("keras-rec embed: --output is required unless --shard is given")
    return embed_table(
        args.input,
        text_column=args.text_column,
        id_column=args.id_column,
        output_path=args.output,
        encoder=_build_encoder(args),
        shard=args.shard,
        encoding=args.encoding,
        missing_text=args.missing_text,
    )


def _run_embed_on_beam(args: argparse.Namespace) -> dict:
    if args.shard is not None:
        raise SystemExit(
            "keras-rec embed: --shard and --runner exclude each other (the runner splits the work)"
        )
    if args.output is None:
        raise SystemExit("keras-rec embed: --output is required with --runner")
    from keras_rec.embeddings.beam import embed_with_beam

    return embed_with_beam(
        args.input,
        text_column=args.text_column,
        output_path=args.output,
        id_column=args.id_column,
        settings=_encoder_settings(args),
        cache=args.cache,
        runner=args.runner,
        beam_args=args.arguments,
        missing_text=args.missing_text,
        encoding=args.encoding,
        worker_threads=args.worker_threads,
    )


def _run_embed_movielens(args: argparse.Namespace) -> dict:
    from keras_rec.embeddings.movielens_precompute import precompute_movielens

    summary = precompute_movielens(
        _build_encoder(args), output_dir=args.output_dir, data_path=args.data
    )
    print(
        f"MovieLens-100K: {summary['items']} items ({summary['items_encoded']} encoded, "
        f"{summary['items_cached']} cached), {summary['users']} users "
        f"({summary['users_encoded']} encoded, {summary['users_cached']} cached), "
        f"dim {summary['embedding_dim']}, {summary['seconds']:.1f}s; cache: {summary['cache']}",
        file=sys.stderr,
    )
    for text in summary["nearest_items"]:
        print(f"  near 'Star Wars (1977)': {text}", file=sys.stderr)
    return summary


def _run_export_hub(args: argparse.Namespace) -> dict:
    from keras_rec.hub.export_hub import export_hub

    return export_hub(
        args.model,
        args.out,
        max_seq_length=args.max_seq_length,
        target=None if args.target == "none" else args.target,
        overwrite=args.overwrite,
        precision=args.precision,
    )


def _run_check_serving(args: argparse.Namespace) -> dict:
    from keras_rec.serving.op_check import DEFAULT_TARGET, check_serving_ops

    results = [check_serving_ops(args.path, target) for target in args.target or [DEFAULT_TARGET]]
    if args.list_ops:
        missing = set().union(*(result.missing for result in results))
        print(f"{len(results[0].ops)} ops used by {results[0].path}:", file=sys.stderr)
        for op in results[0].ops:
            print(f"  {op}" + ("  <- missing" if op in missing else ""), file=sys.stderr)
    for result in results:
        print(("OK: " if result.ok else "FAIL: ") + result.explain(), file=sys.stderr)
    summary = {
        "path": args.path,
        "targets": {result.target: sorted(result.missing) for result in results},
    }
    ok = all(result.ok for result in results)
    if not args.ops_only:
        summary["serving_check"] = _serving_check(args.path)
        ok = ok and summary["serving_check"]["ok"]
    return {**summary, "ok": ok, "exit_code": 0 if ok else 1}


def _serving_check(path: str) -> dict:
    from keras_rec.serving.fresh_process import ServingCheckError
    from keras_rec.serving.serving_check import check_serving

    try:
        report = check_serving(path)
    except ServingCheckError as error:
        print(f"FAIL: {error}", file=sys.stderr)
        return {"ok": False, "error": str(error)}
    print(
        f"OK: loads through TF Serving's Session loader and tf.saved_model.load; answered "
        f"batches of {report['batch_sizes']}, {report['warmup_requests']} warmup records and "
        f"the REST examples {report['rest_examples']} ({report['seconds']} s).",
        file=sys.stderr,
    )
    return report


def _run_serving_config(args: argparse.Namespace) -> dict:
    from keras_rec.serving.serving_config import write_serving_config

    summary = write_serving_config(
        args.base_dir,
        out_dir=args.out,
        base_path_prefix=args.base_path_prefix,
        batching=not args.no_batching,
        max_batch_size=args.max_batch_size,
        batch_timeout_micros=args.batch_timeout_micros,
    )
    models = ", ".join(f"{name} {versions}" for name, versions in summary["models"].items())
    print(f"Serving {models}; start with:\n  {summary['command']}", file=sys.stderr)
    print(f"or:\n  {summary['docker_command']}", file=sys.stderr)
    return summary


def _run_package_sagemaker(args: argparse.Namespace) -> dict:
    from keras_rec.serving.sagemaker_package import package_sagemaker

    return package_sagemaker(
        args.model_dirs,
        args.out,
        code_dir=args.code,
        versions="all" if args.all_versions else "latest",
        target=None if args.target == "none" else args.target,
        overwrite=args.overwrite,
    )


def _index_settings(args: argparse.Namespace):
    from keras_rec.recommender.index.item_index import ItemIndexSettings

    return ItemIndexSettings(
        args.index, args.index_recall, args.index_storage, args.num_partitions, args.seed
    )


def _run_build_index(args: argparse.Namespace) -> dict:
    from keras_rec.recommender.index.build_index import build_index

    summary = build_index(
        args.item_vectors,
        id_column=args.id_column,
        output_dir=args.output_dir,
        model_name=args.model_name,
        k=args.k,
        settings=_index_settings(args),
        queries=args.queries,
        target=None if args.target == "none" else args.target,
    )
    index = summary["index"]
    detail = (
        f"{index['num_partitions']} partitions, nprobe {index['nprobe']}, recall@{args.k} "
        f"{index['recall']} vs exact"
        if index["index"] == "ivf"
        else "brute force"
    )
    print(f"Indexed {index['items']} items ({detail}): {summary['path']}", file=sys.stderr)
    return summary


def _run_add_items(args: argparse.Namespace) -> dict:
    from keras_rec.recommender.index.add_items import add_items
    from keras_rec.recommender.index.recall_recheck import recheck_line

    summary = add_items(
        args.export,
        args.items,
        item_id_column=args.item_id_column,
        item_text_template=args.item_text_template,
        cache=args.cache,
    )
    print(
        f"Added {summary['added_items']} items ({summary['items']} in all): {summary['path']}",
        file=sys.stderr,
    )
    line = recheck_line(summary["index"])
    if line:
        print(line, file=sys.stderr)
    return summary


def _run_train_classifier(args: argparse.Namespace) -> dict:
    from keras_rec.training.classifier_script import run

    return run(args.arguments)


def _run_train_recommender(args: argparse.Namespace) -> dict:
    from keras_rec.training.recommender_script import run

    return run(args.arguments)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keras-rec",
        description="Sentence-transformer models in Keras 3 / TensorFlow.",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log at INFO level, TensorFlow's start-up lines included",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train-classifier",
        add_help=False,
        help="train a text classifier (a sentence-transformer, frozen or fine-tuned, and a "
        "dense head) on a labelled CSV/Parquet file or the bundled tweets; evaluate it and "
        "export it for TF Serving (--help for its options)",
    )
    # Its own parser (SageMaker-aware) reads the rest: see `main`.
    train.set_defaults(run=_run_train_classifier, passes_arguments=True)

    recommender = commands.add_parser(
        "train-recommender",
        add_help=False,
        help="train two-tower retrieval and a re-ranker on MovieLens or your own "
        "interactions, items and users (CSV/Parquet); evaluate them beside popularity and "
        "EASE; export retrieval, the two-stage recommend model and the towers for TF "
        "Serving (--help for its options)",
    )
    recommender.set_defaults(run=_run_train_recommender, passes_arguments=True)

    embed = commands.add_parser(
        "embed",
        help="embed a text column of a CSV/TSV/Parquet/JSON Lines file (path or URL) "
        "through the embedding cache, in this process or as an Apache Beam job",
        description="Embed a text column of a CSV/TSV/Parquet/JSON Lines file; only texts "
        "the cache lacks are encoded. Writes a Parquet file with the id, the text and the "
        "embedding. With --runner the job runs as an Apache Beam pipeline (the `beam` "
        "extra); options it does not know go to Beam, e.g. --direct_num_workers=2 "
        "--direct_running_mode=multi_processing, or Dataflow's --project/--region/"
        "--temp_location.",
    )
    embed.add_argument(
        "--input",
        required=True,
        help="CSV/TSV/Parquet/JSON Lines file (path or URL); with --runner a glob too",
    )
    embed.add_argument("--text-column", required=True)
    embed.add_argument("--id-column", default=None, help="unique id column, copied to the output")
    embed.add_argument("--output", default=None, help="output Parquet file (path or URL)")
    embed.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="fill only worker I's part of the cache (of N workers); writes no output",
    )
    embed.add_argument("--encoding", default="utf-8", help="CSV text encoding")
    embed.add_argument(
        "--missing-text",
        choices=("error", "empty"),
        default="error",
        help="what to do with missing (NaN) texts: fail naming the rows, or embed ''",
    )
    embed.add_argument(
        "--runner",
        default=None,
        help="run on Apache Beam: direct (in-process), dataflow, flink, spark, prism, or a "
        "Beam runner class name; the cache must be a directory or URL every worker reaches",
    )
    embed.add_argument(
        "--worker-threads",
        type=int,
        default=None,
        help="with --runner: intra-op threads of each worker's model (default: all cores; "
        "the direct runner's multi_processing mode shares them out among its workers)",
    )
    _add_encoder_arguments(embed)
    embed.set_defaults(run=_run_embed, passes_arguments=True)

    movielens = commands.add_parser(
        "embed-movielens",
        help="precompute and cache the MovieLens-100K item and user embeddings",
    )
    movielens.add_argument(
        "--data", default=None, help="local MovieLens directory (default: fetch)"
    )
    movielens.add_argument(
        "--output-dir", default=None, help="also write items.parquet and users.parquet here"
    )
    _add_encoder_arguments(movielens)
    movielens.set_defaults(run=_run_embed_movielens)

    from keras_rec.serving.op_check import DEFAULT_TARGET, available_targets

    export = commands.add_parser(
        "export-hub",
        help="write a sentence-transformer as TF Hub preprocess/ and encoder/ SavedModels",
        description="Convert a sentence-transformer (BERT family or MPNet) into two TF2 "
        "SavedModels following the TF Hub text conventions: OUT/preprocess and OUT/encoder.",
    )
    export.add_argument(
        "--model",
        default=None,
        help="local path or Hugging Face id (default: all-MiniLM-L6-v2, embedded)",
    )
    export.add_argument("--out", required=True, help="directory to create")
    export.add_argument("--max-seq-length", type=int, default=None)
    export.add_argument(
        "--target",
        default=DEFAULT_TARGET,
        choices=[*available_targets(), "none"],
        help=f"TF Serving build whose ops both SavedModels must fit (default: {DEFAULT_TARGET})",
    )
    export.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    export.add_argument(
        "--precision",
        default=PRECISIONS[0],
        choices=PRECISIONS,
        help="float32 (default): equal to the PyTorch model; bfloat16: the transformer "
        "layers' kernels and matmuls in bfloat16 (AMX CPUs), cosine >= 0.999",
    )
    export.set_defaults(run=_run_export_hub)

    check = commands.add_parser(
        "check-serving",
        help="check that TF Serving can load and run a SavedModel: its ops, the Session "
        "loader in a fresh process, warmup and REST examples",
        description="Check a SavedModel the way TF Serving will load it: every op (graph and "
        "function library) must exist in the TF Serving build; then, in a fresh process with "
        "TensorFlow only, it must load through the Session-based C++ loader path (and "
        "tf.saved_model.load), answer serving_default at two batch sizes, replay every "
        "warmup record and answer its REST examples with their stored responses. "
        "Exit code 1 when any check fails.",
    )
    check.add_argument("path", help="SavedModel directory (or saved_model.pb with --ops-only)")
    check.add_argument(
        "--target",
        action="append",
        choices=available_targets(),
        help=f"TF Serving build; repeat for several (default: {DEFAULT_TARGET})",
    )
    check.add_argument("--list-ops", action="store_true", help="also list every op used")
    check.add_argument(
        "--ops-only", action="store_true", help="only check the ops; do not load the model"
    )
    check.set_defaults(run=_run_check_serving)

    config = commands.add_parser(
        "serving-config",
        help="write models.config and batching parameters for TF Serving, for the "
        "exported SavedModels of a directory",
        description="Find every model under BASE_DIR (BASE_DIR/<name>/<version>/saved_model.pb; "
        "directories not named by a number are ignored) and write models.config, "
        "models.docker.config and batching_parameters.txt; print the commands that serve them.",
    )
    config.add_argument("base_dir", help="directory holding one directory per model")
    config.add_argument("--out", default=None, help="where to write the files (default: BASE_DIR)")
    config.add_argument(
        "--base-path-prefix",
        default=None,
        help="the path the server sees BASE_DIR under, e.g. /models (default: BASE_DIR itself)",
    )
    config.add_argument("--no-batching", action="store_true", help="no server-side batching")
    config.add_argument("--max-batch-size", type=int, default=64)
    config.add_argument("--batch-timeout-micros", type=int, default=2000)
    config.set_defaults(run=_run_serving_config)

    sagemaker = commands.add_parser(
        "package-sagemaker",
        help="pack SavedModel versions into a model.tar.gz for SageMaker TF Serving",
        description="Write a model.tar.gz holding <name>/<version>/ for each model (and "
        "code/inference.py with --code), after checking every SavedModel's ops.",
    )
    sagemaker.add_argument(
        "model_dirs",
        nargs="+",
        metavar="MODEL_DIR",
        help="a model directory <base>/<name> or a version directory <base>/<name>/<version>",
    )
    sagemaker.add_argument("--out", required=True, help="the .tar.gz file to write")
    sagemaker.add_argument(
        "--code", default=None, help="directory with inference.py (and requirements.txt, lib/)"
    )
    sagemaker.add_argument(
        "--all-versions",
        action="store_true",
        help="pack every version of each model directory (default: the latest)",
    )
    sagemaker.add_argument(
        "--target",
        default=DEFAULT_TARGET,
        choices=[*available_targets(), "none"],
        help=f"TF Serving build every SavedModel must fit (default: {DEFAULT_TARGET})",
    )
    sagemaker.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    sagemaker.set_defaults(run=_run_package_sagemaker)

    build = commands.add_parser(
        "build-index",
        help="index item vectors (Parquet) as a top-K SavedModel for TF Serving: exact, or "
        "IVF with nprobe tuned on queries",
        description="Read item vectors (Parquet: an id column and an `embedding` list column, "
        "as `keras-rec embed` writes) and export OUTPUT_DIR/MODEL_NAME/<version>, whose "
        "serving_default takes `query` float [None, d] and returns `item_ids` and `scores` "
        "[None, k] by inner product: brute force, or an IVF index (k-means partitions, core "
        "TF ops only, served by stock TF Serving) whose nprobe is chosen to reach "
        "--index-recall against exact. Checked like every export.",
    )
    build.add_argument("--item-vectors", required=True, help="Parquet of ids and embeddings")
    build.add_argument("--id-column", required=True, help="the id column")
    build.add_argument("--output-dir", required=True, help="directory of served models")
    build.add_argument("--model-name", required=True, help="TF Serving model name")
    build.add_argument("--k", type=int, default=10, help="results per query")
    build.add_argument(
        "--queries",
        default=None,
        help="Parquet with an `embedding` column of real queries to tune nprobe on "
        "(default: a sample of the items)",
    )
    build.add_argument(
        "--target",
        default=DEFAULT_TARGET,
        choices=[*available_targets(), "none"],
        help=f"TF Serving build the SavedModel must fit (default: {DEFAULT_TARGET})",
    )
    _add_index_arguments(build)
    build.set_defaults(run=_run_build_index)

    add = commands.add_parser(
        "add-items",
        help="add new items (CSV/TSV/Parquet) to an exported retrieval or next_items model: "
        "the next version, no retraining",
        description="Embed new items' texts with the run's sentence-transformer, pass them "
        "through its exported item tower (as items without history), add them to the "
        "retrieval (or next_items) model's index (IVF: each into its nearest partition) and "
        "write the next version, checked; existing items and users are unchanged. In "
        "next_items, the new items can also be named among a request's recent items.",
    )
    add.add_argument(
        "--export",
        required=True,
        help="<output-dir>/retrieval or <output-dir>/next_items, or a version",
    )
    add.add_argument("--items", required=True, help="CSV/TSV/Parquet of the new items")
    add.add_argument("--item-id-column", default=None, help="default: the run's")
    add.add_argument(
        "--item-text-template",
        default=None,
        help="the catalogue's text template, e.g. \"{title}. {genres}\" (default: the run's)",
    )
    add.add_argument("--cache", default=None, help="embedding cache root (default: the run's)")
    add.set_defaults(run=_run_add_items)
    return parser


def _add_index_arguments(parser: argparse.ArgumentParser) -> None:
    from keras_rec.index_choices import DEFAULT_TARGET_RECALL, INDEX_TYPES, STORAGES

    parser.add_argument(
        "--index",
        choices=INDEX_TYPES,
        default="auto",
        help="exact brute force, or ivf; auto: ivf from 100,000 items",
    )
    parser.add_argument(
        "--index-recall",
        type=float,
        default=DEFAULT_TARGET_RECALL,
        help=f"recall@k vs exact the IVF nprobe must reach (default {DEFAULT_TARGET_RECALL})",
    )
    parser.add_argument("--index-storage", choices=STORAGES, default=STORAGES[0])
    parser.add_argument(
        "--num-partitions", type=int, default=None, help="IVF partitions (default ~sqrt(items))"
    )
    parser.add_argument("--seed", type=int, default=0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if not args.verbose:
        # TensorFlow's C++ start-up lines (CUDA probing, oneDNN, ...) are noise on a
        # command line, here and in the processes this one starts; errors still raise
        # as Python exceptions, and other native lines still show.
        from keras_rec.tensorflow_startup import (
            HIDE_STARTUP_VARIABLE,
            hide_tensorflow_startup_lines,
        )

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault(HIDE_STARTUP_VARIABLE, "1")
        hide_tensorflow_startup_lines()
    if getattr(args, "passes_arguments", False):
        args.arguments = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        summary = args.run(args)
    except (ValueError, TypeError, OSError, ImportError) as error:
        if args.verbose:
            raise
        print(f"keras-rec {args.command}: error: {error}", file=sys.stderr)
        return 2
    exit_code = summary.pop("exit_code", 0)
    print(json.dumps(summary, default=str))
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
