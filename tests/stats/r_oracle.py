"""Run an R script in a subprocess and read back its results: R is the test oracle.

Usage in a test::

    from tests.stats.r_oracle import run_r

    out = run_r(
        '''
        library(survival)
        fit <- coxph(Surv(time, status) ~ x, data = d)
        result <- list(coef = unname(coef(fit)), se = unname(sqrt(diag(vcov(fit)))))
        ''',
        {"d": frame},
    )
    out["coef"]  # float (length-1 vectors come back as scalars)

Contract
--------
- Every data frame in ``data`` is written to a temporary CSV (full float precision) and
  read in R as a ``data.frame`` bound to its key (``stringsAsFactors = FALSE``).
- The script must assign ``result``: a named list whose elements are atomic vectors,
  matrices, data frames or (nested) named lists.
- The result is serialised by a small base-R JSON writer (no jsonlite needed, so the
  oracle works with a bare R + survival install), numbers as ``%.17g``:
  length-1 unnamed vectors become scalars, other unnamed vectors lists, named vectors and
  named lists dicts, matrices lists of rows, data frames ``pandas.DataFrame``; ``NA``,
  ``NaN`` and infinities become ``None`` / ``nan`` / ``inf``.
- R warnings are collected and returned under the key ``"_warnings"`` (a list of str).

If ``Rscript`` is not on PATH the calling test is skipped locally, but fails when the
``CI`` environment variable is set (CI installs R, so the oracle always runs there).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

_R_JSON_WRITER = r"""
.ro_num <- function(v) {
  out <- sprintf("%.17g", v)
  out[is.nan(v)] <- '"NaN"'
  out[is.infinite(v) & v > 0] <- '"Inf"'
  out[is.infinite(v) & v < 0] <- '"-Inf"'
  out[is.na(v) & !is.nan(v)] <- "null"
  out
}
.ro_atoms <- function(v) {
  if (is.factor(v)) v <- as.character(v)
  if (is.logical(v)) {
    out <- ifelse(v, "true", "false"); out[is.na(v)] <- "null"; return(out)
  }
  if (is.numeric(v)) return(.ro_num(as.double(v)))
  if (inherits(v, "Date")) v <- format(v)
  v <- as.character(v)
  out <- vapply(v, function(s) encodeString(enc2utf8(s), quote = '"'), "", USE.NAMES = FALSE)
  out[is.na(v)] <- "null"
  out
}
.ro_json <- function(x) {
  if (is.null(x)) return("null")
  if (is.data.frame(x)) {
    cols <- vapply(names(x), function(n) paste0(encodeString(n, quote = '"'), ":[",
      paste(.ro_atoms(x[[n]]), collapse = ","), "]"), "")
    return(paste0('{"__data_frame__":{"columns":[',
      paste(vapply(names(x), encodeString, "", quote = '"'), collapse = ","),
      '],"data":{', paste(cols, collapse = ","), "}}}"))
  }
  if (is.matrix(x)) {
    rows <- vapply(seq_len(nrow(x)), function(i)
      paste0("[", paste(.ro_atoms(x[i, ]), collapse = ","), "]"), "")
    return(paste0('{"__matrix__":[', paste(rows, collapse = ","), "]}"))
  }
  if (is.list(x)) {
    vals <- vapply(x, .ro_json, "", USE.NAMES = FALSE)
    if (!is.null(names(x)) && all(nzchar(names(x)))) {
      keys <- vapply(names(x), encodeString, "", quote = '"', USE.NAMES = FALSE)
      return(paste0("{", paste(paste0(keys, ":", vals), collapse = ","), "}"))
    }
    return(paste0("[", paste(vals, collapse = ","), "]"))
  }
  atoms <- .ro_atoms(x)
  if (!is.null(names(x)) && all(nzchar(names(x)))) {
    keys <- vapply(names(x), encodeString, "", quote = '"', USE.NAMES = FALSE)
    return(paste0("{", paste(paste0(keys, ":", atoms), collapse = ","), "}"))
  }
  if (length(atoms) == 1) return(atoms)
  paste0("[", paste(atoms, collapse = ","), "]")
}
"""


class ROracleError(RuntimeError):
    """The R script failed or did not assign ``result``."""


def rscript_path() -> str | None:
    """Path of ``Rscript`` or None."""
    return shutil.which("Rscript")


def require_r() -> str:
    """Return the Rscript path; skip the test locally, fail in CI, when R is missing."""
    path = rscript_path()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Rscript is not installed, but CI must run the R oracle tests")
        pytest.skip("Rscript is not installed on this machine")
    return path


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__data_frame__"}:
            spec = value["__data_frame__"]
            data = {c: [_scalar(v) for v in spec["data"][c]] for c in spec["columns"]}
            return pd.DataFrame(data, columns=spec["columns"])
        if set(value) == {"__matrix__"}:
            return [[_scalar(v) for v in row] for row in value["__matrix__"]]
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return _scalar(value)


def _scalar(value: Any) -> Any:
    if value == "NaN":
        return math.nan
    if value == "Inf":
        return math.inf
    if value == "-Inf":
        return -math.inf
    return value


def run_r(
    script: str,
    data: dict[str, pd.DataFrame] | None = None,
    *,
    timeout: float = 600.0,
) -> dict[str, Any]:
    """Run ``script`` with ``Rscript`` and return its ``result`` list as a dict.

    Parameters
    ----------
    script
        R code; it must assign a named list to ``result``.
    data
        Data frames made available to the script under their keys.
    timeout
        Seconds before the R process is killed.

    Returns
    -------
    dict
        The decoded ``result`` plus ``"_warnings"`` (R warning messages).
    """
    rscript = require_r()
    with tempfile.TemporaryDirectory(prefix="r_oracle_") as tmp:
        tmpdir = Path(tmp)
        loads = []
        for name, frame in (data or {}).items():
            if not name.isidentifier():
                raise ValueError(f"data key {name!r} is not a valid R name")
            csv = tmpdir / f"{name}.csv"
            frame.to_csv(csv, index=False, float_format="%.17g")
            loads.append(
                f"{name} <- utils::read.csv({json.dumps(str(csv))}, stringsAsFactors = FALSE,"
                " check.names = FALSE)"
            )
        out_path = tmpdir / "result.json"
        program = "\n".join(
            [
                _R_JSON_WRITER,
                *loads,
                ".ro_warnings <- character(0)",
                "withCallingHandlers({",
                "local({",
                script,
                "result <<- result",
                "})",
                "}, warning = function(w) {",
                "  .ro_warnings <<- c(.ro_warnings, conditionMessage(w))",
                "  invokeRestart('muffleWarning')",
                "})",
                "if (!exists('result')) stop('the R script did not assign result')",
                "result[['_warnings']] <- as.list(.ro_warnings)",
                f"writeLines(.ro_json(result), {json.dumps(str(out_path))}, useBytes = TRUE)",
            ]
        )
        script_path = tmpdir / "script.R"
        script_path.write_text(program, encoding="utf-8")
        proc = subprocess.run(
            [rscript, "--vanilla", str(script_path)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0 or not out_path.exists():
            raise ROracleError(f"Rscript failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        decoded = _decode(json.loads(out_path.read_text(encoding="utf-8")))
    if not isinstance(decoded, dict):
        raise ROracleError("the R script's result must be a named list")
    decoded.setdefault("_warnings", [])
    return decoded
