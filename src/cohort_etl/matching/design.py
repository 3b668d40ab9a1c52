"""Covariate design matrices: numeric columns kept, categorical ones expanded to indicators.

The expansion follows R's default treatment contrasts: the levels of a categorical column
are sorted, the first one is the reference and gets no column, every other level ``L`` of
column ``c`` becomes an indicator named ``f"{c}{L}"`` (R's naming, e.g. ``racehispan``),
so coefficients line up with ``glm()`` output. Boolean columns become 0/1 numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cohort_etl.errors import InputDataError


@dataclass(frozen=True)
class CovariateInfo:
    """How one input column entered the design matrix.

    Attributes
    ----------
    name
        Column name in the input data.
    kind
        ``"numeric"``, ``"binary"`` (numeric with values 0/1 only) or ``"categorical"``.
    levels
        Sorted levels of a categorical column (the first is the reference); empty otherwise.
    columns
        Names of the design-matrix columns built from it.
    """

    name: str
    kind: str
    levels: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Design:
    """A numeric design matrix (no intercept column) and its provenance."""

    matrix: np.ndarray
    columns: list[str]
    covariates: list[CovariateInfo] = field(default_factory=list)


def is_categorical(series: pd.Series) -> bool:
    """True for string, object or pandas categorical columns."""
    return bool(
        isinstance(series.dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(series.dtype)
        or pd.api.types.is_string_dtype(series.dtype)
    )


def factor_levels(series: pd.Series) -> tuple[np.ndarray, list[str], list[str]]:
    """Codes, level label per code, and the sorted level labels of a categorical column.

    Levels sort like R's ``factor()``: numerically for numeric columns, as strings
    otherwise (labels are ``str(value)``).
    """
    codes, uniques = pd.factorize(series)
    values = list(uniques)
    labels = [str(u) for u in values]
    if pd.api.types.is_numeric_dtype(series.dtype):
        natural = [str(u) for u in sorted(values)]
    else:
        natural = sorted(set(labels))
    return np.asarray(codes), labels, natural


def check_columns(data: pd.DataFrame, columns: list[str], what: str = "covariate") -> None:
    """Raise :class:`InputDataError` for absent columns or missing values.

    Parameters
    ----------
    data
        The analysis dataset.
    columns
        Columns that must be present and complete.
    what
        Word used in the message (``"covariate"``, ``"treatment"``...).
    """
    absent = [c for c in columns if c not in data.columns]
    if absent:
        raise InputDataError(f"{what} column(s) not in the data: {', '.join(absent)}")
    for c in columns:
        n_missing = int(data[c].isna().sum())
        if n_missing:
            raise InputDataError(f"{what} column {c!r} has {n_missing} missing value(s)")


def build_design(
    data: pd.DataFrame,
    covariates: list[str],
    categorical: list[str] | None = None,
    template: list[CovariateInfo] | None = None,
) -> Design:
    """Build the design matrix for ``covariates``.

    Parameters
    ----------
    data
        One row per person.
    covariates
        Columns to use, in order.
    categorical
        Columns to treat as categorical even if numeric (string / categorical columns
        always are).
    template
        Covariate infos of an earlier fit; levels are then taken from it (for prediction
        on new data); unseen levels raise :class:`InputDataError`.

    Returns
    -------
    Design
    """
    check_columns(data, covariates)
    forced = set(categorical or [])
    known = {info.name: info for info in (template or [])}
    blocks: list[np.ndarray] = []
    names: list[str] = []
    infos: list[CovariateInfo] = []
    for col in covariates:
        series = data[col]
        if col in forced or is_categorical(series) or col in known and known[col].levels:
            codes_raw, names_u, natural = factor_levels(series)
            if col in known:
                levels = list(known[col].levels)
                unseen = sorted(set(names_u) - set(levels))
                if unseen:
                    raise InputDataError(
                        f"covariate {col!r} has level(s) not seen when fitting: {unseen[:5]}"
                    )
            else:
                levels = natural
            cols = [f"{col}{lev}" for lev in levels[1:]]
            position = {lev: j for j, lev in enumerate(levels)}
            remap = np.array([position[u] for u in names_u], dtype=np.int64)
            codes = remap[codes_raw]
            block = np.zeros((len(series), len(cols)))
            for j in range(1, len(levels)):
                block[:, j - 1] = codes == j
            blocks.append(block)
            names.extend(cols)
            infos.append(CovariateInfo(col, "categorical", tuple(levels), tuple(cols)))
            continue
        if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
            x = series.to_numpy(dtype=float)
        else:  # pragma: no cover - dtypes above are exhaustive for pandas
            raise InputDataError(f"covariate {col!r} has unsupported type {series.dtype}")
        if not np.all(np.isfinite(x)):
            bad = int((~np.isfinite(x)).sum())
            raise InputDataError(f"covariate {col!r} has {bad} non-finite value(s)")
        kind = "binary" if bool(np.all((x == 0) | (x == 1))) else "numeric"
        blocks.append(x[:, None])
        names.append(col)
        infos.append(CovariateInfo(col, kind, (), (col,)))
    matrix = np.empty((len(data), len(names)))
    start = 0
    for block in blocks:
        matrix[:, start : start + block.shape[1]] = block
        start += block.shape[1]
    return Design(matrix=matrix, columns=names, covariates=infos)


def treatment_vector(data: pd.DataFrame, treatment: str) -> np.ndarray:
    """Return the treatment column as a 0/1 integer array.

    Raises
    ------
    InputDataError
        Column absent, missing values, or values other than 0/1 (or booleans).
    """
    check_columns(data, [treatment], "treatment")
    raw = data[treatment]
    if pd.api.types.is_bool_dtype(raw.dtype):
        return raw.to_numpy(dtype=np.int8).astype(np.int64)
    values = pd.unique(raw)
    if not set(values.tolist()) <= {0, 1}:
        shown = sorted(map(str, values))[:5]
        raise InputDataError(
            f"treatment column {treatment!r} must be coded 0/1 (found values {shown})"
        )
    return raw.to_numpy().astype(np.int64)
