"""Figures of a study report, drawn with matplotlib (Agg) into PNG files.

Each function takes plain tables (pandas DataFrames with documented columns) so it can be
used on any estimator's output, and writes one PNG. Colours are fixed per arm so the same
arm has the same colour in every figure of a report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

PALETTE = ("#1f5fa8", "#c8553d", "#2a9d8f", "#8e6c8a", "#e9a23b", "#5c6f7b")
DPI = 120


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def km_plot(
    curves: Mapping[str, pd.DataFrame],
    path: Path,
    *,
    title: str,
    risk_times: Sequence[float],
    risk_table: Mapping[str, Sequence[int | str]],
    time_unit: str = "days",
    time_scale: float = 1.0,
    ylabel: str = "Survival probability",
    annotation: str | None = None,
    start: float = 1.0,
) -> Path:
    """Kaplan-Meier step curves with pointwise CI bands and a numbers-at-risk table.

    ``curves[label]`` has columns ``time``, ``surv``, ``lower``, ``upper`` (one row per
    distinct time; time 0 is added if absent). ``risk_table[label]`` gives the number at
    risk at each of ``risk_times`` (already suppressed to text such as "<5" if needed).
    ``time_scale`` divides times for display (e.g. 365.25 to show years). ``start`` is
    the value at time 0 (0 for a cumulative incidence curve, whose ``surv`` column then
    holds the incidence).
    """
    fig = plt.figure(figsize=(7.5, 5.6))
    grid = fig.add_gridspec(2, 1, height_ratios=(4, 1 + 0.25 * len(curves)), hspace=0.3)
    ax = fig.add_subplot(grid[0])
    for i, (label, table) in enumerate(curves.items()):
        colour = PALETTE[i % len(PALETTE)]
        t = np.concatenate([[0.0], table["time"].to_numpy(float)]) / time_scale
        s = np.concatenate([[start], table["surv"].to_numpy(float)])
        lo = np.concatenate([[start], table["lower"].to_numpy(float)])
        hi = np.concatenate([[start], table["upper"].to_numpy(float)])
        ax.step(t, s, where="post", color=colour, lw=1.8, label=label)
        ax.fill_between(t, lo, hi, step="post", color=colour, alpha=0.15, lw=0)
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0, right=max(risk_times) / time_scale if len(risk_times) else None)
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left" if start < 0.5 else "lower left", frameon=False)
    ax.tick_params(labelbottom=False)
    if annotation:
        ax.text(
            0.98,
            0.96,
            annotation,
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=9,
            bbox={"boxstyle": "round", "fc": "white", "ec": "0.7"},
        )
    table_ax = fig.add_subplot(grid[1], sharex=ax)
    table_ax.set_ylim(-0.5, len(curves) - 0.5)
    table_ax.invert_yaxis()
    for i, counts in enumerate(risk_table.values()):
        for at, n in zip(risk_times, counts, strict=True):
            table_ax.text(
                float(at) / time_scale,
                i,
                str(n),
                ha="center",
                va="center",
                fontsize=8,
                color=PALETTE[i % len(PALETTE)],
            )
    table_ax.set_yticks(range(len(risk_table)), list(risk_table))
    ticks = [t / time_scale for t in risk_times]
    # risk times in whole display units are rounded to whole days: label the unit value
    table_ax.set_xticks(ticks, [f"{t:.0f}" if time_scale > 1 else f"{t:g}" for t in ticks])
    table_ax.set_xlabel(f"Time ({time_unit})")
    table_ax.set_title("Number at risk", loc="left", fontsize=9)
    for side in ("top", "right", "left"):
        table_ax.spines[side].set_visible(False)
    table_ax.tick_params(axis="y", length=0, pad=16)
    return _save(fig, path)


def love_plot(
    balance: pd.DataFrame, path: Path, *, threshold: float = 0.1, title: str = "Covariate balance"
) -> Path:
    """Absolute SMD per covariate before and after matching.

    ``balance`` has columns ``covariate``, ``smd_before``, ``smd_after``.
    """
    data = balance.assign(
        abs_before=balance["smd_before"].abs(), abs_after=balance["smd_after"].abs()
    ).sort_values("abs_before")
    height = max(2.5, 0.28 * len(data) + 1.2)
    fig, ax = plt.subplots(figsize=(6.5, height))
    y = np.arange(len(data))
    ax.scatter(
        data["abs_before"],
        y,
        marker="o",
        facecolors="none",
        edgecolors=PALETTE[1],
        label="Before matching",
    )
    ax.scatter(data["abs_after"], y, marker="o", color=PALETTE[0], label="After matching")
    ax.axvline(threshold, color="0.4", ls="--", lw=1)
    ax.set_yticks(y, data["covariate"])
    ax.set_xlabel("Absolute standardized mean difference")
    ax.set_title(title, loc="left", fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", frameon=False, fontsize=8)
    return _save(fig, path)


def ps_distribution(
    ps: pd.DataFrame,
    path: Path,
    *,
    labels: Mapping[object, str],
    title: str = "Propensity score by arm",
) -> Path:
    """Overlaid densities (histograms) of the propensity score by arm, before matching.

    ``ps`` has columns ``arm`` and ``ps``; ``labels`` maps arm values to display names.
    """
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    bins = [float(b) for b in np.linspace(0, 1, 41)]
    for i, (value, label) in enumerate(labels.items()):
        scores = ps.loc[ps["arm"] == value, "ps"].to_numpy(float)
        ax.hist(
            scores,
            bins=bins,
            density=True,
            alpha=0.45,
            color=PALETTE[i % len(PALETTE)],
            label=f"{label} (n={len(scores)})",
        )
    ax.set_xlabel("Propensity score")
    ax.set_ylabel("Density")
    ax.set_title(title, loc="left", fontsize=11)
    ax.legend(frameon=False, fontsize=8)
    return _save(fig, path)


def forest_plot(
    rows: pd.DataFrame,
    path: Path,
    *,
    title: str = "Hazard ratios",
    xlabel: str = "Hazard ratio (95% CI, log scale)",
) -> Path:
    """Estimates with CIs on a log axis. ``rows``: ``label``, ``estimate``, ``lower``, ``upper``."""
    height = max(2.2, 0.4 * len(rows) + 1.2)
    fig, ax = plt.subplots(figsize=(6.5, height))
    y = np.arange(len(rows))[::-1]
    est = rows["estimate"].to_numpy(float)
    lo = rows["lower"].to_numpy(float)
    hi = rows["upper"].to_numpy(float)
    ax.errorbar(
        est, y, xerr=[est - lo, hi - est], fmt="s", color=PALETTE[0], ecolor="0.3", capsize=3
    )
    ax.axvline(1.0, color="0.4", ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_yticks(y, rows["label"])
    ax.set_xlabel(xlabel)
    ax.set_title(title, loc="left", fontsize=11)
    ax.grid(axis="x", alpha=0.3, which="both")
    return _save(fig, path)


def attrition_flow(attrition: pd.DataFrame, path: Path, *, title: str = "Attrition") -> Path:
    """Boxes from top to bottom: each rule with persons remaining, and removed beside it.

    ``attrition`` has columns ``rule``, ``persons_remaining``, ``persons_removed`` (values
    may be strings after small-cell suppression).
    """
    n = len(attrition)
    fig, ax = plt.subplots(figsize=(7.0, 1.0 + 0.9 * n))
    ax.set_xlim(0, 10)
    ax.set_ylim(-n, 0.6)
    ax.axis("off")
    for i, row in enumerate(attrition.itertuples(index=False)):
        yc = -i
        ax.text(
            3.2,
            yc,
            f"{row.rule}\nn = {row.persons_remaining}",
            ha="center",
            va="center",
            fontsize=9,
            bbox={"boxstyle": "round", "fc": "#eef3fa", "ec": PALETTE[0]},
        )
        if i > 0:
            ax.annotate(
                "",
                xy=(3.2, yc + 0.32),
                xytext=(3.2, yc + 0.68),
                arrowprops={"arrowstyle": "->", "color": "0.4"},
            )
            ax.text(
                7.6,
                yc + 0.5,
                f"excluded: {row.persons_removed}"
                + (f"\n{row.removed}" if getattr(row, "removed", "") else ""),
                ha="center",
                va="center",
                fontsize=8,
                color="0.3",
            )
    ax.set_title(title, loc="left", fontsize=11)
    return _save(fig, path)
