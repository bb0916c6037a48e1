"""`IdIndex`: raw user or item ids (integers or strings) -> table rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from keras_rec.data._row_checks import format_rows
from keras_rec.data.errors import DataValidationError

_CANONICAL_INT = r"^-?(?:0|[1-9][0-9]*)$"


class IdIndex:
    """Maps raw ids to rows `0 .. len - 1`, in the order the ids were added.

    Ids are int64 when every id is an integer (a Parquet integer column, or
    CSV text written as a plain integer), else strings, so "007" stays
    "007" and `7` from Parquet matches "7" from CSV. An index without a
    catalogue grows as interactions name new ids (`add=True`); if a
    non-integer id appears, the ids so far become their decimal strings.

    Args:
        ids: the catalogue's ids (unique), or None for an empty index.
        source: str. Names the file and column in errors.
    """

    def __init__(self, ids=None, source: str = "ids"):
        self.kind = "int"
        self.index = pd.Index(np.zeros(0, np.int64))
        self.source = source
        if ids is not None:
            values = pd.Series(np.asarray(ids))
            missing = values.isna().to_numpy()
            if missing.any():
                raise DataValidationError(
                    f"{source} has missing ids in {format_rows(np.flatnonzero(missing))}."
                )
            self.add(values)
            if len(self.index) != len(values):
                duplicated = values.astype(str).duplicated(keep=False).to_numpy()
                shown = sorted(set(values[duplicated].astype(str).tolist()))[:5]
                raise DataValidationError(
                    f"{source} has duplicate ids {shown} in "
                    f"{format_rows(np.flatnonzero(duplicated))}. Keep one row per id."
                )

    def __len__(self) -> int:
        return len(self.index)

    @property
    def ids(self) -> np.ndarray:
        """The ids in row order: int64, or an `object` array of `str`."""
        if self.kind == "int":
            return self.index.to_numpy(np.int64)
        return self.index.to_numpy(object)

    def rows(self, values, add: bool = False) -> np.ndarray:
        """int64 rows of `values`; -1 for ids not in the index (unless `add`)."""
        values = pd.Series(values).reset_index(drop=True)
        if add:
            self._switch_kind(values)
        keys = self._keys(values)
        if add:
            self._append(keys)
        rows = self.index.get_indexer(keys.to_numpy()).astype(np.int64)
        rows[keys.isna().to_numpy()] = -1
        return rows

    def add(self, values) -> None:
        """Appends the ids of `values` not yet in the index."""
        values = pd.Series(values).reset_index(drop=True).dropna()
        self._switch_kind(values)
        self._append(self._keys(values))

    def _switch_kind(self, values: pd.Series) -> None:
        """Turns the index to strings if `values` hold an id that is not an integer."""
        if self.kind == "int" and not _all_integers(values.dropna()):
            self.kind = "str"
            self.index = pd.Index(self.index.astype(str).to_numpy(object))

    def _append(self, keys: pd.Series) -> None:
        keys = pd.Index(keys.dropna().unique())
        new = keys.difference(self.index, sort=False) if len(self.index) else keys
        if len(new):
            self.index = self.index.append(pd.Index(new))

    def _keys(self, values: pd.Series) -> pd.Series:
        if self.kind == "str":
            return values.map(lambda v: v if isinstance(v, str) else str(v), na_action="ignore")
        if pd.api.types.is_integer_dtype(values.dtype):
            return values.astype(np.int64)
        text = values.astype(str)
        canonical = text.str.match(_CANONICAL_INT) & values.notna()
        keys = pd.Series(np.full(len(values), np.nan, object))
        keys[canonical.to_numpy()] = text[canonical].astype(np.int64).to_numpy()
        return keys.where(canonical, None).astype(object)


def _all_integers(values: pd.Series) -> bool:
    if pd.api.types.is_integer_dtype(values.dtype):
        return True
    if pd.api.types.is_float_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return False
    return bool(values.astype(str).str.match(_CANONICAL_INT).all())
