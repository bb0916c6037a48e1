"""Labelled texts for classification: label vocabulary, checks, stratified split."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from keras_rec.data._row_checks import format_rows
from keras_rec.data.errors import DataValidationError


@dataclasses.dataclass
class LabeledSplit:
    """Texts and integer labels of one split.

    Args:
        texts: list of str.
        labels: int64 numpy array of class ids into the label vocabulary.
        rows: int64 numpy array of each example's 0-based row in the source.
    """

    texts: list[str]
    labels: np.ndarray
    rows: np.ndarray

    def __len__(self) -> int:
        return len(self.texts)


def label_vocabulary(labels: pd.Series, source: str) -> list[str]:
    """The sorted distinct labels (as strings), after checking every class can be split.

    Raises:
        DataValidationError: a missing label, fewer than 2 classes, or a class
            with a single example (it cannot be both trained on and evaluated),
            naming the rows.
    """
    missing = np.flatnonzero(labels.isna().to_numpy())
    if len(missing):
        raise DataValidationError(f"{source}: missing labels in {format_rows(missing)}")
    as_text = labels.astype(str).to_numpy()
    names, counts = np.unique(as_text, return_counts=True)
    if len(names) < 2:
        raise DataValidationError(
            f"{source}: a classifier needs at least 2 classes. Found only {list(names)}."
        )
    single = [name for name, count in zip(names, counts) if count == 1]
    if single:
        rows = np.flatnonzero(np.isin(as_text, single))
        raise DataValidationError(
            f"{source}: classes with a single example cannot be split into train and "
            f"test: {single} ({format_rows(rows)}). Add examples or remove them."
        )
    return names.tolist()


def encode_labels(labels: pd.Series, vocabulary: list[str], source: str) -> np.ndarray:
    """Class ids of `labels`; labels outside `vocabulary` raise naming their rows."""
    as_text = labels.astype(str).to_numpy()
    index = {name: i for i, name in enumerate(vocabulary)}
    unseen = np.flatnonzero([value not in index for value in as_text])
    if len(unseen):
        values = sorted({as_text[i] for i in unseen})
        raise DataValidationError(
            f"{source}: labels {values} were not seen in training (classes: {vocabulary}); "
            f"{format_rows(unseen)}"
        )
    return np.asarray([index[value] for value in as_text], dtype=np.int64)


def drop_duplicate_texts(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Keeps the first row of each distinct text, so no text is in two splits.

    Returns:
        `(frame, dropped)`: the kept rows (original index preserved) and how
        many were dropped.
    """
    keep = ~frame["text"].duplicated(keep="first").to_numpy()
    return frame[keep], int((~keep).sum())


def stratified_split(
    frame: pd.DataFrame,
    vocabulary: list[str],
    source: str,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 42,
) -> tuple[LabeledSplit, LabeledSplit, LabeledSplit]:
    """Splits `frame` (columns `text`, `label`) into train/validation/test by class.

    Each class is shuffled with `seed` and cut by the fractions, so every
    split keeps the class proportions (classes with 2 examples go to train
    and test).

    Returns:
        `(train, validation, test)` `LabeledSplit`s; `rows` are positions in
        `frame`'s index (0-based source rows when `frame` came from a reader).
    """
    for name, value in (
        ("validation_fraction", validation_fraction),
        ("test_fraction", test_fraction),
    ):
        if not 0.0 < value < 0.5:
            raise ValueError(f"`{name}` must be in (0, 0.5). Received: {name}={value}")
    labels = encode_labels(frame["label"], vocabulary, source)
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[], [], []]
    for class_id in range(len(vocabulary)):
        members = rng.permutation(np.flatnonzero(labels == class_id))
        n_test = max(1, round(test_fraction * len(members)))
        n_validation = round(validation_fraction * len(members))
        if len(members) - n_test - n_validation < 1:
            n_validation = 0
        parts[2].extend(members[:n_test])
        parts[1].extend(members[n_test : n_test + n_validation])
        parts[0].extend(members[n_test + n_validation :])
    texts = frame["text"].tolist()
    positions = frame.index.to_numpy()
    splits = []
    for part in parts:
        order = np.sort(np.asarray(part, dtype=np.int64))
        splits.append(
            LabeledSplit(
                [texts[i] for i in order], labels[order], positions[order].astype(np.int64)
            )
        )
    return tuple(splits)


def subsample(frame: pd.DataFrame, max_examples: int | None, seed: int) -> pd.DataFrame:
    """A stratified sample of about `max_examples` rows (>= 2 per class), in file order."""
    if max_examples is None or len(frame) <= max_examples:
        return frame
    rng = np.random.default_rng(seed)
    share = max_examples / len(frame)
    labels = frame["label"].astype(str).to_numpy()
    keep = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        keep.extend(rng.choice(members, max(2, round(share * len(members))), replace=False))
    return frame.iloc[np.sort(keep)]


@dataclasses.dataclass
class PreparedSplits:
    """What `prepare_splits` returns.

    Args:
        vocabulary: list of str. Class names, in class-id order.
        train, validation, test: `LabeledSplit`s.
        duplicates_dropped: int. Rows dropped as repeated texts.
    """

    vocabulary: list[str]
    train: LabeledSplit
    validation: LabeledSplit
    test: LabeledSplit
    duplicates_dropped: int


def prepare_splits(
    frame: pd.DataFrame,
    source: str,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 42,
    max_examples: int | None = None,
) -> PreparedSplits:
    """Checks labels, drops repeated texts, subsamples, and splits by class.

    Args:
        frame: DataFrame with columns `text` and `label`.
        source: str. Names the data in error messages (e.g. "File 'x.csv'").
        validation_fraction, test_fraction: float. Shares of each class.
        seed: int. Seeds the subsample and the split.
        max_examples: int or None. Stratified subsample first.
    """
    label_vocabulary(frame["label"], source)  # every row checked before anything is dropped
    frame, duplicates = drop_duplicate_texts(frame)
    frame = subsample(frame, max_examples, seed)
    vocabulary = label_vocabulary(frame["label"], source)
    train, validation, test = stratified_split(
        frame, vocabulary, source, validation_fraction, test_fraction, seed
    )
    return PreparedSplits(vocabulary, train, validation, test, duplicates)
