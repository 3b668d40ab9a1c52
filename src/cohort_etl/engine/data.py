"""The file door's input: an analysis dataset read from CSV or Parquet."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from cohort_etl.errors import InputDataError


def read_dataset(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet analysis dataset (by suffix), one row per person."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: analysis dataset not found")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".txt"):
            return pd.read_csv(path)
    except (ValueError, OSError) as exc:
        raise InputDataError(f"{path}: cannot be read: {exc}") from None
    raise InputDataError(f"{path}: unsupported file type {suffix!r} (use .csv or .parquet)")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
