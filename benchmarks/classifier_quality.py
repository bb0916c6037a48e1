"""Accuracy of four text-classification pipelines on one held-out split of the tweets.

The seeds compare these on the 3-class sentiment tweets; all four here use
the same split (duplicate texts dropped, stratified by class, seed 42:
70% train, 10% validation, 20% test; the baselines train on train +
validation):

1. TF-IDF (word 1-2 grams) + logistic regression;
2. frozen all-MiniLM-L6-v2 embeddings + logistic regression, and + XGBoost
   (the seeds' pipeline; the tweets have no structured features to add);
3. `keras-rec train-classifier`, frozen encoder + dense head (embeddings
   computed once through the cache);
4. `keras-rec train-classifier --trainable`, fine-tuned encoder.

Targets: fine-tuned > frozen, and fine-tuned >= TF-IDF + 3 points.
Ends with one JSON line carrying each pipeline's accuracy and macro-F1.

    python benchmarks/classifier_quality.py [--epochs-finetune 2] [--max-examples N]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs-frozen", type=int, default=30)
    parser.add_argument("--epochs-finetune", type=int, default=2)
    parser.add_argument("--encoder-learning-rate", type=float, default=4e-5)
    parser.add_argument("--max-examples", type=int, default=None, help="quick runs")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip-finetune", action="store_true")
    args = parser.parse_args()

    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    from keras_rec.classifier import ClassifierTrainingConfig, labeled_texts, train_classifier
    from keras_rec.data import sentiment_tweets
    from keras_rec.embeddings import CachedEncoder, SentenceEncoder

    splits = labeled_texts.prepare_splits(
        sentiment_tweets()[["text", "label"]],
        "Dataset 'sentiment_tweets'",
        validation_fraction=0.1,
        test_fraction=0.2,
        seed=args.seed,
        max_examples=args.max_examples,
    )
    train, validation, test = splits.train, splits.validation, splits.test
    fit_texts = train.texts + validation.texts
    fit_labels = np.concatenate([train.labels, validation.labels])
    results: dict[str, dict] = {}

    def score(name, predicted, seconds):
        results[name] = {
            "accuracy": round(float(accuracy_score(test.labels, predicted)), 4),
            "macro_f1": round(float(f1_score(test.labels, predicted, average="macro")), 4),
            "seconds": round(seconds, 1),
        }
        print(f"{name}: {results[name]}", flush=True)

    start = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    tfidf = LogisticRegression(C=4.0, max_iter=2000)
    tfidf.fit(vectorizer.fit_transform(fit_texts), fit_labels)
    score(
        "tfidf_logreg", tfidf.predict(vectorizer.transform(test.texts)), time.perf_counter() - start
    )

    start = time.perf_counter()
    encoder = CachedEncoder(SentenceEncoder(device="cpu"))
    fit_x, test_x = encoder.encode(fit_texts), encoder.encode(test.texts)
    embed_seconds = time.perf_counter() - start
    start = time.perf_counter()
    logreg = LogisticRegression(C=4.0, max_iter=2000).fit(fit_x, fit_labels)
    score("minilm_frozen_logreg", logreg.predict(test_x), time.perf_counter() - start)

    import xgboost

    start = time.perf_counter()
    booster = xgboost.XGBClassifier(
        n_estimators=400,
        max_depth=6,
        learning_rate=0.1,
        subsample=0.8,
        colsample_bytree=0.8,
        tree_method="hist",
        random_state=args.seed,
    ).fit(fit_x, fit_labels)
    score("minilm_frozen_xgboost", booster.predict(test_x), time.perf_counter() - start)

    output_dir = tempfile.mkdtemp(prefix="classifier_quality_")
    common = dict(
        data="sentiment_tweets",
        validation_fraction=0.1,
        test_fraction=0.2,
        seed=args.seed,
        max_examples=args.max_examples,
        output_dir=output_dir,
    )
    runs = [
        (
            "keras_frozen_head",
            dict(
                trainable=False,
                epochs=args.epochs_frozen,
                patience=3,
                batch_size=64,
                hidden_units=(256,),
                dropout=0.3,
            ),
        )
    ]
    if not args.skip_finetune:
        runs.append(
            (
                "keras_finetuned",
                dict(
                    trainable=True,
                    epochs=args.epochs_finetune,
                    patience=0,
                    batch_size=32,
                    encoder_learning_rate=args.encoder_learning_rate,
                    head_learning_rate=1e-3,
                    hidden_units=(),
                    dropout=0.1,
                ),
            )
        )
    for name, settings in runs:
        summary = train_classifier(ClassifierTrainingConfig(model_name=name, **common, **settings))
        assert summary["test_examples"] == len(test)
        results[name] = {
            "accuracy": summary["test_accuracy"],
            "macro_f1": summary["test_macro_f1"],
            "seconds": summary["seconds"],
            "export_path": summary["export_path"],
        }
        print(f"{name}: {results[name]}", flush=True)

    result = {
        "benchmark": "classifier_quality",
        "train_examples": len(train),
        "validation_examples": len(validation),
        "test_examples": len(test),
        "embedding_seconds": round(embed_seconds, 1),
        **{f"{name}_accuracy": r["accuracy"] for name, r in results.items()},
        **{f"{name}_macro_f1": r["macro_f1"] for name, r in results.items()},
    }
    if "keras_finetuned" in results:
        tuned = results["keras_finetuned"]["accuracy"]
        result["finetuned_minus_tfidf_points"] = round(
            100 * (tuned - results["tfidf_logreg"]["accuracy"]), 2
        )
        result["finetuned_minus_frozen_points"] = round(
            100 * (tuned - results["keras_frozen_head"]["accuracy"]), 2
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
