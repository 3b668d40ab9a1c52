"""Small helpers to build Arrow columns from numpy arrays without Python objects."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa


def dates(days: np.ndarray) -> pa.Array:
    """date32 column from days since 1970-01-01 (int32, zero copy)."""
    arr = np.ascontiguousarray(days, dtype=np.int32)
    return pa.Array.from_buffers(pa.date32(), len(arr), [None, pa.py_buffer(arr)])


def ints(values: np.ndarray) -> pa.Array:
    return pa.array(np.ascontiguousarray(values, dtype=np.int64))


def int32s(values: np.ndarray) -> pa.Array:
    return pa.array(np.ascontiguousarray(values, dtype=np.int32))


def floats(values: np.ndarray) -> pa.Array:
    return pa.array(np.ascontiguousarray(values, dtype=np.float64))


def strings(codes: np.ndarray, dictionary: Sequence[str]) -> pa.Array:
    """Dictionary-encoded string column: ``dictionary[codes[i]]``; code -1 is NULL."""
    idx = np.ascontiguousarray(codes, dtype=np.int32)
    mask = idx < 0
    indices = pa.array(np.where(mask, 0, idx), mask=mask if mask.any() else None)
    return pa.DictionaryArray.from_arrays(indices, pa.array(list(dictionary), pa.string()))


def lookup(keys: np.ndarray, table_keys: np.ndarray, table_values: np.ndarray) -> np.ndarray:
    """Vectorised dict lookup: ``table_values[table_keys == key]`` for each key.

    ``table_keys`` must be sorted; every key must be present.
    """
    pos = np.searchsorted(table_keys, keys)
    return table_values[pos]
