"""The error raised when input data fails validation."""

from __future__ import annotations


class DataValidationError(ValueError):
    """Input data is malformed: missing columns, missing values, bad bytes.

    Raised by the `keras_rec.data` readers and dataset loaders. The message
    names the file, the column and the offending rows (1-based data rows,
    the CSV header not counted), so the data can be fixed at its source.

    Example:

    ```python
    try:
        df = keras_rec.data.read_text_labels("train.csv")
    except keras_rec.data.DataValidationError as e:
        print(e)
    ```
    """
