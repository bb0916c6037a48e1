"""Column checks shared by the readers and dataset loaders.

Row numbers in messages are 1-based data rows: the first row after the CSV
header is row 1 (for Parquet, the first row is row 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from keras_rec.data.errors import DataValidationError

MAX_SHOWN = 10
ROW_NOTE = "(1-based data rows; the header is not counted)"


def format_rows(positions: Iterable[int]) -> str:
    """Formats 0-based row positions as "3 rows: 2, 5, 9", at most 10 shown."""
    rows = [int(p) + 1 for p in positions]
    shown = ", ".join(str(r) for r in rows[:MAX_SHOWN])
    if len(rows) > MAX_SHOWN:
        shown += f", ... (first {MAX_SHOWN} shown)"
    noun = "row" if len(rows) == 1 else "rows"
    return f"{len(rows)} {noun}: {shown} {ROW_NOTE}"


def require_columns(df: pd.DataFrame, columns: Sequence[str], source: str) -> None:
    """Raises if any of `columns` is absent, listing the columns present."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"{source} has no column(s) {missing}. Columns present: {list(df.columns)}."
        )


def require_rows(df: pd.DataFrame, source: str) -> None:
    """Raises if `df` has a header but no data rows."""
    if len(df) == 0:
        raise DataValidationError(
            f"{source} is empty: it has a header ({list(df.columns)}) but no data rows."
        )


def require_present(
    values: pd.Series, column: str, source: str, hint: str = "", first_row: int = 0
) -> None:
    """Raises if `values` has missing (NaN/None) entries, naming the rows.

    `first_row` is the 0-based position of `values[0]` in its file.
    """
    positions = first_row + np.flatnonzero(values.isna().to_numpy())
    if len(positions):
        raise DataValidationError(
            f"{source}: column `{column}` has missing values in "
            f"{format_rows(positions)}.{' ' + hint if hint else ''}"
        )


def to_numeric(
    values: pd.Series, column: str, source: str, allow_missing: bool = False
) -> pd.Series:
    """Converts a column to numbers; raises naming missing/non-numeric rows.

    Integral values come back as int64, others (and missing ones, when
    `allow_missing`) as float64.
    """
    if not allow_missing:
        require_present(values, column, source)
    if pd.api.types.is_bool_dtype(values) or not (
        pd.api.types.is_numeric_dtype(values)
        or pd.api.types.is_string_dtype(values)
        or values.dtype == object
    ):
        raise DataValidationError(
            f"{source}: column `{column}` must hold numbers. Received: dtype={values.dtype}"
        )
    numbers = pd.to_numeric(values, errors="coerce")
    bad = np.flatnonzero((numbers.isna() & values.notna()).to_numpy())
    if len(bad):
        examples = [values.iloc[p] for p in bad[:3]]
        raise DataValidationError(
            f"{source}: column `{column}` has non-numeric values in "
            f"{format_rows(bad)}. Examples: {examples}"
        )
    numbers = numbers.astype("float64") if numbers.dtype == object else numbers
    if pd.api.types.is_float_dtype(numbers):
        finite = np.isfinite(numbers.to_numpy())
        if finite.all() and (numbers == np.floor(numbers)).all():
            if numbers.abs().max() < 2**53:
                return numbers.astype("int64")
    return numbers


def require_unique(df: pd.DataFrame, columns: Sequence[str], source: str, hint: str = "") -> None:
    """Raises if the key `columns` repeat, naming the duplicate groups."""
    dup = df.duplicated(list(columns), keep=False).to_numpy()
    if not dup.any():
        return
    groups = (
        df.loc[dup, list(columns)]
        .assign(_pos=np.flatnonzero(dup) + 1)
        .groupby(list(columns), sort=False)["_pos"]
        .agg(list)
    )
    examples = [
        f"{key!r} at rows {', '.join(map(str, rows[:MAX_SHOWN]))}"
        for key, rows in list(groups.items())[:5]
    ]
    more = f" (first 5 of {len(groups)} shown)" if len(groups) > 5 else ""
    key = f"`{columns[0]}`" if len(columns) == 1 else f"({', '.join(columns)})"
    raise DataValidationError(
        f"{source}: {key} must be unique, but {len(groups)} value(s) repeat "
        f"in {format_rows(np.flatnonzero(dup))}. Duplicates: "
        f"{'; '.join(examples)}{more}.{' ' + hint if hint else ''}"
    )
