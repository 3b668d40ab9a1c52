"""Calibration plot: the controls' estimates against their standard errors, with the
empirical null's funnel (as EmpiricalCalibration's ``plotCalibrationEffect``).

Points left of / right of the dashed funnel have a traditional two-sided p < 0.05; the
shaded funnel marks where the calibrated p (from the empirical null) is >= 0.05. A
negative control outside the shaded funnel is evidence the null does not fit.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from cohort_etl.diagnostics.calibration import EmpiricalNull
from cohort_etl.report.figures import PALETTE, _save, plt

Z95 = 1.959963984540054


def calibration_plot(
    negative: pd.DataFrame,
    path: Path,
    *,
    null: EmpiricalNull | None,
    positive: pd.DataFrame | None = None,
    primary: tuple[float, float] | None = None,
    title: str = "Negative controls and the empirical null",
) -> Path:
    """Draw the calibration plot.

    Parameters
    ----------
    negative
        Columns ``log_rr``, ``se_log_rr`` of the negative controls.
    path
        PNG file to write.
    null
        Fitted empirical null (None: only the traditional funnel is drawn).
    positive
        Optional columns ``log_rr``, ``se_log_rr``, ``true_log_rr`` of positive controls.
    primary
        Optional ``(log_rr, se_log_rr)`` of the study's estimate, drawn as a diamond.
    """
    fig, ax = plt.subplots(figsize=(7.0, 5.0))
    ses = [negative["se_log_rr"].to_numpy(float)]
    if positive is not None and len(positive):
        ses.append(positive["se_log_rr"].to_numpy(float))
    if primary is not None:
        ses.append(np.array([primary[1]]))
    finite = np.concatenate(ses)
    finite = finite[np.isfinite(finite)]
    top = max(1.0, float(finite.max()) * 1.1) if finite.size else 1.0
    se_grid = np.linspace(1e-4, top, 200)
    ax.plot(-Z95 * se_grid, se_grid, "--", color="#555555", lw=1, label="p = 0.05 (traditional)")
    ax.plot(Z95 * se_grid, se_grid, "--", color="#555555", lw=1)
    if null is not None:
        half = Z95 * np.sqrt(null.sd**2 + se_grid**2)
        ax.fill_betweenx(
            se_grid, null.mean - half, null.mean + half, color=PALETTE[0], alpha=0.15, lw=0,
            label=f"calibrated p >= 0.05 (null mean {null.mean:.2f}, sd {null.sd:.2f})",
        )  # fmt: skip
    ax.scatter(
        negative["log_rr"], negative["se_log_rr"], s=18, color=PALETTE[0], alpha=0.8,
        label=f"negative controls (n = {len(negative)})",
    )  # fmt: skip
    if positive is not None and len(positive):
        for i, true in enumerate(sorted(set(positive["true_log_rr"].astype(float)))):
            grp = positive[positive["true_log_rr"].astype(float) == true]
            colour = PALETTE[(i + 2) % len(PALETTE)]
            ax.scatter(
                grp["log_rr"], grp["se_log_rr"], s=18, color=colour, marker="s",
                label=f"positive controls, true HR {math.exp(true):.2g}",
            )  # fmt: skip
            ax.axvline(true, color=colour, lw=0.8, ls=":")
    if primary is not None:
        ax.scatter(
            [primary[0]], [primary[1]], s=70, marker="D", color=PALETTE[1], zorder=5,
            label="study estimate",
        )  # fmt: skip
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_ylim(top, 0)  # larger SE lower down, as in EmpiricalCalibration's plot
    ticks = [0.25, 0.5, 1, 2, 4, 8]
    ax.set_xticks([math.log(t) for t in ticks])
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.set_xlim(math.log(0.2), math.log(10))
    ax.set_xlabel("Hazard ratio (log scale)")
    ax.set_ylabel("Standard error of log HR")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower left")
    return _save(fig, path)
