import numpy as np
import pandas as pd
import pytest

from keras_rec.classifier.labeled_texts import (
    drop_duplicate_texts,
    encode_labels,
    label_vocabulary,
    stratified_split,
    subsample,
)
from keras_rec.data import DataValidationError


def test_vocabulary_rejects_missing_labels_and_singleton_classes():
    with pytest.raises(DataValidationError, match=r"missing labels in 1 row: 2 "):
        label_vocabulary(pd.Series(["a", None, "b"]), "File 'x.csv'")
    with pytest.raises(DataValidationError, match=r"\['rare'\] \(1 row: 4 "):
        label_vocabulary(pd.Series(["a", "b", "a", "rare", "b"]), "File 'x.csv'")
    with pytest.raises(DataValidationError, match="at least 2 classes"):
        label_vocabulary(pd.Series(["a", "a"]), "File 'x.csv'")
    assert label_vocabulary(pd.Series([2, 10, 2, 10]), "x") == ["10", "2"]


def test_unseen_labels_are_named_with_their_rows():
    with pytest.raises(DataValidationError, match=r"\['z'\] were not seen.*2 rows: 2, 4 "):
        encode_labels(pd.Series(["a", "z", "b", "z"]), ["a", "b"], "File 'test.csv'")
    np.testing.assert_array_equal(encode_labels(pd.Series(["b", "a"]), ["a", "b"], "x"), [1, 0])


def test_split_is_stratified_disjoint_and_seeded():
    labels = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(100)], "label": labels})
    train, validation, test = stratified_split(frame, ["a", "b", "c"], "x", 0.1, 0.2, seed=1)
    # Per class: test = round(0.2 n), validation = round(0.1 n), the rest trains.
    assert np.bincount(test.labels).tolist() == [10, 6, 4]
    assert np.bincount(validation.labels).tolist() == [5, 3, 2]
    assert np.bincount(train.labels).tolist() == [35, 21, 14]
    rows = np.concatenate([train.rows, validation.rows, test.rows])
    assert sorted(rows.tolist()) == list(range(100))
    again = stratified_split(frame, ["a", "b", "c"], "x", 0.1, 0.2, seed=1)[2]
    assert again.rows.tolist() == test.rows.tolist()
    other = stratified_split(frame, ["a", "b", "c"], "x", 0.1, 0.2, seed=2)[2]
    assert other.rows.tolist() != test.rows.tolist()
    assert [frame["text"][r] for r in test.rows] == test.texts


def test_two_example_class_goes_to_train_and_test():
    frame = pd.DataFrame({"text": list("abcdefg"), "label": ["x"] * 5 + ["y"] * 2})
    train, validation, test = stratified_split(frame, ["x", "y"], "src")
    assert (train.labels == 1).sum() == 1 and (test.labels == 1).sum() == 1


def test_duplicate_texts_keep_the_first():
    frame = pd.DataFrame({"text": ["a", "b", "a", "c", "b"], "label": ["1", "2", "3", "1", "2"]})
    kept, dropped = drop_duplicate_texts(frame)
    assert dropped == 2 and kept.index.tolist() == [0, 1, 3]


def test_subsample_keeps_each_class_and_the_file_order():
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(100)], "label": ["a"] * 90 + ["b"] * 10})
    assert subsample(frame, None, seed=0) is frame and subsample(frame, 100, seed=0) is frame
    sample = subsample(frame, 20, seed=0)
    counts = sample["label"].value_counts().to_dict()
    assert counts == {"a": 18, "b": 2}  # the shares kept, at least 2 of the rare class
    assert sample.index.is_monotonic_increasing
    pd.testing.assert_frame_equal(sample, subsample(frame, 20, seed=0))
    assert not sample.index.equals(subsample(frame, 20, seed=1).index)
