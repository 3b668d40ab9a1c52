"""Cox PH at 1M rows x 10 covariates: our numpy fit next to R ``coxph`` on the same data.

Also timed (not part of the target): ``cox_zph(fit, "km")`` and a fit with Harrell's
concordance, which R's ``coxph`` computes inside its timed call.

The data are simulated with a fixed seed (daily-rounded times, so Efron ties matter),
written once as a raw float64 file, fitted by :class:`cohort_etl.outcomes.cox.CoxPH` in a
fresh Python (wall time of the fit and peak RSS of that process) and, when ``Rscript``
exists, by ``survival::coxph`` timed with ``system.time`` inside R. Target: our time
<= 1.5 x R's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from bench.memory import run_measured

N_ROWS = 1_000_000
N_COVARIATES = 10
SEED = 20261121
TARGET_RATIO = 1.5
ROOT = Path(__file__).resolve().parent.parent


def simulate(n: int = N_ROWS, p: int = N_COVARIATES, seed: int = SEED) -> np.ndarray:
    """Columns: time (days), status, x1..xp; half binary, half normal covariates."""
    rng = np.random.default_rng(seed)
    X = np.empty((n, p))
    X[:, : p // 2] = rng.integers(0, 2, (n, p // 2))
    X[:, p // 2 :] = rng.normal(size=(n, p - p // 2))
    beta = np.linspace(-0.5, 0.5, p)
    t = rng.exponential(365 / np.exp(X @ beta))
    c = rng.uniform(30, 1500, n)
    time = np.ceil(np.minimum(t, c))
    status = (t <= c).astype(float)
    return np.column_stack([time, status, X])


CHILD_FIT = """
import sys, time
sys.path.insert(0, {root!r})
import numpy as np
from cohort_etl.outcomes.cox import CoxPH
data = np.fromfile({path!r}, dtype=np.float64).reshape({n}, {p} + 2)
t0 = time.perf_counter()
fit = CoxPH().fit(data[:, 0], data[:, 1], data[:, 2:])
__extra['fit_seconds'] = time.perf_counter() - t0
__extra['coef'] = fit.coef_.tolist()
__extra['iterations'] = fit.iterations_
"""

CHILD_EXTRAS = """
import sys, time
sys.path.insert(0, {root!r})
import numpy as np
from cohort_etl.outcomes.cox import CoxPH, cox_zph
data = np.fromfile({path!r}, dtype=np.float64).reshape({n}, {p} + 2)
t0 = time.perf_counter()
fit = CoxPH(compute_concordance=True).fit(data[:, 0], data[:, 1], data[:, 2:])
__extra['fit_concordance_seconds'] = time.perf_counter() - t0
__extra['concordance'] = fit.result_.concordance
t0 = time.perf_counter()
cox_zph(fit, "km")
__extra['zph_seconds'] = time.perf_counter() - t0
"""

R_SCRIPT = """
suppressMessages(library(survival))
con <- file({path!r}, "rb")
m <- matrix(readBin(con, "double", {n} * ({p} + 2)), ncol = {p} + 2, byrow = TRUE)
close(con)
d <- as.data.frame(m)
names(d) <- c("time", "status", paste0("x", 1:{p}))
tm <- system.time(fit <- coxph(Surv(time, status) ~ ., data = d))
cat(sprintf("%.6f\\n", tm[["elapsed"]]))
cat(sprintf("%.17g\\n", fit$concordance[["concordance"]]))
cat(sprintf("%.17g", coef(fit)), sep = "\\n")
"""


def run() -> list[dict[str, object]]:
    """Fit once with our code and once with R; return one measurement dict."""
    with tempfile.TemporaryDirectory(prefix="bench_cox_") as tmp:
        path = str(Path(tmp) / "cox.f64")
        data = simulate()
        n_events = int(data[:, 1].sum())
        data.tofile(path)
        del data
        fmt = {"root": str(ROOT), "path": path, "n": N_ROWS, "p": N_COVARIATES}
        ours = run_measured(CHILD_FIT.format(**fmt))
        extras = run_measured(CHILD_EXTRAS.format(**fmt))
        result: dict[str, object] = {
            "name": f"cox_efron_{N_ROWS}x{N_COVARIATES}",
            "rows": N_ROWS,
            "covariates": N_COVARIATES,
            "events": n_events,
            "seconds": round(float(ours["fit_seconds"]), 3),
            "process_seconds": round(float(ours["process_seconds"]), 3),
            "peak_rss_mb": round(float(ours["peak_rss_mb"]), 1),
            "iterations": ours["iterations"],
            "cox_zph_seconds": round(float(extras["zph_seconds"]), 3),
            "fit_with_concordance_seconds": round(float(extras["fit_concordance_seconds"]), 3),
            "peak_rss_mb_with_concordance_and_zph": round(float(extras["peak_rss_mb"]), 1),
            "target": f"<= {TARGET_RATIO} x R coxph time",
        }
        rscript = shutil.which("Rscript")
        if rscript is None:
            result["reference"] = "Rscript not installed: R time not measured"
            return [result]
        script = Path(tmp) / "cox.R"
        script.write_text(R_SCRIPT.format(path=path, n=N_ROWS, p=N_COVARIATES))
        cmd = [rscript, "--vanilla", str(script)]
        gnu_time = Path("/usr/bin/time")
        if gnu_time.exists():  # GNU time reports R's peak RSS (whole process, incl. reading)
            cmd = [str(gnu_time), "-f", "r_peak_rss_kb=%M", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"R coxph benchmark failed:\n{proc.stderr[-2000:]}")
        lines = proc.stdout.split()
        r_seconds = float(lines[0])
        r_concordance = float(lines[1])
        r_coef = np.array([float(v) for v in lines[2:]])
        ours_coef = np.array(ours["coef"], dtype=float)
        ratio = float(ours["fit_seconds"]) / r_seconds
        r_rss = [ln for ln in proc.stderr.splitlines() if ln.startswith("r_peak_rss_kb=")]
        if r_rss:
            result["r_peak_rss_mb"] = round(int(r_rss[-1].split("=")[1]) / 1024, 1)
        result.update(
            {
                "reference": "R survival::coxph (Efron), system.time elapsed, same data",
                "r_seconds": round(r_seconds, 3),
                "ratio_to_r": round(ratio, 3),
                "meets_target": ratio <= TARGET_RATIO,
                # R's coxph also computes the concordance inside its timed fit.
                "ratio_to_r_with_concordance": round(
                    float(extras["fit_concordance_seconds"]) / r_seconds, 3
                ),
                "concordance_rel_diff_vs_r": abs(float(extras["concordance"]) - r_concordance)
                / r_concordance,
                "max_rel_coef_diff_vs_r": float(
                    np.max(np.abs(ours_coef - r_coef) / np.abs(r_coef))
                ),
            }
        )
        return [result]


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
