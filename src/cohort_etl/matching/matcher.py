"""Greedy nearest-neighbour matching on a one-dimensional distance (PS or logit PS).

The greedy rule is MatchIt 4.5.1's ``nn_matchC_vec`` rule, restated (no code copied):

* All units are sorted stably by distance (ties in data order). For a treated unit, the
  candidate on its *left* is the closest still-available control before it in that order,
  the candidate on its *right* the closest available control after it.
* A candidate whose absolute distance difference exceeds the caliper is dropped; of the
  remaining left/right candidates the closer wins, the left one on a tie.
* Treated units are processed in the chosen order (``largest``/``smallest`` distance first
  with ties in data order, ``data`` order, or a seeded ``random`` permutation). With
  ``ratio = k`` there are k rounds; in round r every treated unit still wanting a match
  gets at most one more control (controls already in its set are skipped).
* A control leaves the pool once used ``reuse_max`` times (1 without replacement).

``order = "closest"`` processes, within each round, the globally closest available
(treated, control) pair first (ties: smaller treated row first), with the same candidate
rule; it is deterministic and does not depend on the data order of the treated.

Speed: controls are kept in an array sorted by distance; removed controls are skipped with
two "next available" union-find structures (one per direction, path halving), so each
look-up is amortized almost O(1) and matching costs O(n log n) for the sort. No treated x
control distance matrix is ever built.

Weights follow MatchIt for the ATT: a matched treated unit weighs 1; a control weighs the
sum over its matched treated units of ``1 / (number of controls matched to that unit)``,
then control weights are scaled to sum to the number of distinct matched controls.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from cohort_etl.errors import InputDataError, NotEstimable

Order = Literal["largest", "smallest", "data", "random", "closest"]
CaliperScale = Literal["sd_logit", "sd_ps", "pooled_sd", "absolute"]
Distance = Literal["ps", "logit"]


@dataclass
class MatchResult:
    """Outcome of a matching run.

    Attributes
    ----------
    treated_rows
        Row positions (0-based, data order) of all treated units.
    match_matrix
        ``(n_treated, ratio)`` row positions of the matched controls, ``-1`` where none;
        row i belongs to ``treated_rows[i]``; column r is the round-r match.
    weights
        MatchIt-style ATT weights for every row (0 for unmatched).
    subclass
        Matched-set id per row (1..n_sets, numbered by the treated unit's row order),
        ``0`` for unmatched rows; ``None`` when controls may be reused (sets overlap).
    distance
        The distance used for matching, per row.
    caliper
        Caliper on the distance scale (absolute), or None.
    n_treated, n_control
        Sizes before matching.
    n_treated_matched, n_control_matched
        Treated units with at least one match; distinct controls used.
    reason
        Why no pair was formed (only when there is none), else None.
    settings
        Parameters of the run (for reports).
    """

    treated_rows: np.ndarray
    match_matrix: np.ndarray
    weights: np.ndarray
    subclass: np.ndarray | None
    distance: np.ndarray
    caliper: float | None
    n_treated: int
    n_control: int
    n_treated_matched: int
    n_control_matched: int
    reason: str | None = None
    settings: dict[str, object] = field(default_factory=dict)

    @property
    def n_pairs(self) -> int:
        """Number of (treated, control) links."""
        return int((self.match_matrix >= 0).sum())

    @property
    def matched(self) -> np.ndarray:
        """Boolean mask of rows in the matched sample."""
        return np.asarray(self.weights > 0)

    def pairs(self) -> pd.DataFrame:
        """One row per (treated, control) link.

        Columns ``set_id`` (the treated unit's matched-set id, 1-based in treated row
        order), ``treated_row``, ``control_row``, ``round`` (1-based) and
        ``distance_diff`` (absolute difference in the matching distance).
        """
        has = np.flatnonzero((self.match_matrix >= 0).any(axis=1))
        set_id = np.zeros(len(self.treated_rows), dtype=np.int64)
        set_id[has] = np.arange(1, len(has) + 1)
        t_idx, r_idx = np.nonzero(self.match_matrix >= 0)
        t_rows = self.treated_rows[t_idx]
        c_rows = self.match_matrix[t_idx, r_idx]
        frame = pd.DataFrame(
            {
                "set_id": set_id[t_idx],
                "treated_row": t_rows,
                "control_row": c_rows,
                "round": r_idx + 1,
                "distance_diff": np.abs(self.distance[t_rows] - self.distance[c_rows]),
            }
        )
        return frame.sort_values(["set_id", "round"], kind="stable").reset_index(drop=True)


class _Pool:
    """Controls sorted by distance with O(~1) nearest-available look-ups both ways."""

    def __init__(self, m: int) -> None:
        # right[i]: smallest available position >= i (m = none);
        # left[i + 1]: largest available position <= i, stored shifted (0 = none).
        self.right = list(range(m + 1))
        self.left = list(range(m + 1))

    def find_right(self, i: int) -> int:
        parent = self.right
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def find_left(self, i: int) -> int:
        parent = self.left
        i += 1
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i - 1

    def remove(self, j: int) -> None:
        self.right[j] = j + 1
        self.left[j + 1] = j


def _candidate(
    pool: _Pool,
    cd: list[float],
    ins: int,
    dt: float,
    caliper: float,
    skip: set[int] | None,
    m: int,
    truncate: bool = False,
    key: list[int] | None = None,
) -> int:
    """Position of the chosen control for a treated unit at insertion point ``ins``, or -1.

    ``skip`` holds the controls already in this unit's set (as positions, or as
    ``key[position]`` values when ``key`` is given).
    """
    k_left = pool.find_left(ins - 1) if ins > 0 else -1
    k_right = pool.find_right(ins)
    if skip:
        while k_left >= 0 and (key[k_left] if key else k_left) in skip:
            k_left = pool.find_left(k_left - 1) if k_left > 0 else -1
        while k_right < m and (key[k_right] if key else k_right) in skip:
            k_right = pool.find_right(k_right + 1)
    dl = abs(dt - cd[k_left]) if k_left >= 0 else np.inf
    dr = abs(dt - cd[k_right]) if k_right < m else np.inf
    if truncate:  # MatchIt 4.5.1: C's integer abs() truncates the differences
        dl = float(int(dl)) if k_left >= 0 else np.inf
        dr = float(int(dr)) if k_right < m else np.inf
    if dl > caliper:
        k_left = -1
    if dr > caliper:
        k_right = -1
    if k_left >= 0 and (k_right < 0 or dl <= dr):
        return k_left
    return k_right


def greedy_match_1d(
    distance: np.ndarray,
    treat: np.ndarray,
    treated_order: np.ndarray | None,
    ratio: int = 1,
    caliper: float | None = None,
    reuse_max: int | None = 1,
    truncate: bool = False,
) -> np.ndarray:
    """Core greedy matcher on a 1-D distance (one exact-matching stratum).

    Parameters
    ----------
    distance
        Distance of every unit.
    treat
        0/1 (or bool) per unit.
    treated_order
        Processing order as indices into the treated units (in data order); ``None``
        means closest-pair-first.
    ratio
        Controls per treated unit (rounds).
    caliper
        Absolute caliper on ``distance`` or None.
    reuse_max
        Times a control may be used (1 = without replacement; None = unlimited).

    Returns
    -------
    numpy.ndarray
        ``(n_treated, ratio)`` positions (into ``distance``) of matched controls, -1 none.
    """
    treat = np.asarray(treat).astype(bool)
    n = len(distance)
    all_order = np.argsort(distance, kind="stable")
    is_ctrl_sorted = ~treat[all_order]
    ctrl_sorted = all_order[is_ctrl_sorted]
    m = len(ctrl_sorted)
    # number of controls before each position of the stable order
    ctrl_before = np.cumsum(is_ctrl_sorted) - is_ctrl_sorted
    ins_by_row = np.empty(n, dtype=np.int64)
    ins_by_row[all_order] = ctrl_before
    t_rows = np.flatnonzero(treat)
    n1 = len(t_rows)
    mm = np.full((n1, ratio), -1, dtype=np.int64)
    if m == 0 or n1 == 0:
        return mm
    ins = ins_by_row[t_rows].tolist()
    dts = distance[t_rows].tolist()
    cd = distance[ctrl_sorted].tolist()
    cal = np.inf if caliper is None else float(caliper)
    pool = _Pool(m)
    used = [0] * m
    limit = reuse_max if reuse_max is not None else n1 * ratio + 1
    # a unit's own set matters only when controls can be reused (or to mimic 4.5.1)
    need_rows = ratio > 1 and (limit > 1 or truncate)
    rows: list[set[int]] = [set() for _ in range(n1)] if need_rows else []
    chosen = mm.copy()  # positions into ctrl_sorted
    remaining = m
    # MatchIt 4.5.1 stores 1-based row numbers in a unit's set but looks up 0-based ones,
    # so it skips the control one row *after* a set member instead of the member itself.
    key = ctrl_sorted.tolist() if truncate else None
    offset = 1 if truncate else 0

    def take(i: int, k: int, r: int) -> None:
        nonlocal remaining
        chosen[i, r] = k
        if rows:
            rows[i].add(key[k] + offset if key else k)
        used[k] += 1
        if used[k] >= limit:
            pool.remove(k)
            remaining -= 1

    for r in range(ratio):
        if remaining == 0:
            break
        if treated_order is not None and not rows and not truncate:
            remaining = _ordered_round(
                treated_order.tolist(), ins, dts, cd, cal, pool, used, limit, chosen, r, remaining
            )
            continue
        if treated_order is not None:
            for i in treated_order.tolist():
                k = _candidate(
                    pool, cd, ins[i], dts[i], cal, rows[i] if rows else None, m, truncate, key
                )
                if k >= 0:
                    take(i, k, r)
                    if remaining == 0:
                        break
            continue
        heap: list[tuple[float, int, int]] = []
        for i in range(n1):
            k = _candidate(
                pool, cd, ins[i], dts[i], cal, rows[i] if rows else None, m, truncate, key
            )
            if k >= 0:
                heap.append((abs(dts[i] - cd[k]), i, k))
        heapq.heapify(heap)
        while heap and remaining > 0:
            _, i, k = heapq.heappop(heap)
            if used[k] < limit:
                take(i, k, r)
                continue
            k = _candidate(
                pool, cd, ins[i], dts[i], cal, rows[i] if rows else None, m, truncate, key
            )
            if k >= 0:
                heapq.heappush(heap, (abs(dts[i] - cd[k]), i, k))
    ok = chosen >= 0
    mm[ok] = ctrl_sorted[chosen[ok]]
    return mm


def _ordered_round(
    order: list[int],
    ins: list[int],
    dts: list[float],
    cd: list[float],
    cal: float,
    pool: _Pool,
    used: list[int],
    limit: int,
    chosen: np.ndarray,
    r: int,
    remaining: int,
) -> int:
    """One round in a fixed treated order: the rule of :func:`_candidate`, inlined.

    Same decisions as ``_candidate`` without set-skipping or truncation (the hot path for
    1:1 and for 1:k without replacement); returns the number of controls still available.
    """
    right = pool.right
    left = pool.left
    m = len(cd)
    col = [-1] * len(ins)
    for i in order:
        # nearest available on the left: largest position <= ins - 1 (left is shifted by 1)
        j = ins[i]
        while left[j] != j:
            left[j] = left[left[j]]
            j = left[j]
        k_left = j - 1
        j = ins[i]
        while right[j] != j:
            right[j] = right[right[j]]
            j = right[j]
        k_right = j
        dt = dts[i]
        dl = dt - cd[k_left] if k_left >= 0 else np.inf
        dr = cd[k_right] - dt if k_right < m else np.inf
        if dl > cal:
            k_left = -1
        if dr > cal:
            k_right = -1
        if k_left >= 0 and (k_right < 0 or dl <= dr):
            k = k_left
        elif k_right >= 0:
            k = k_right
        else:
            continue
        col[i] = k
        used[k] += 1
        if used[k] >= limit:
            right[k] = k + 1
            left[k + 1] = k
            remaining -= 1
            if remaining == 0:
                break
    chosen[:, r] = col
    return remaining


def matchit_weights(treated_rows: np.ndarray, mm: np.ndarray, n: int) -> np.ndarray:
    """ATT weights as MatchIt computes them from a match matrix (see module docstring)."""
    weights = np.zeros(n)
    has = mm >= 0
    k = has.sum(axis=1)
    matched_t = k > 0
    weights[treated_rows[matched_t]] = 1.0
    t_idx, r_idx = np.nonzero(has)
    np.add.at(weights, mm[t_idx, r_idx], 1.0 / k[t_idx])
    is_used = np.zeros(n, dtype=bool)
    is_used[mm[has]] = True
    controls = np.flatnonzero(is_used)
    total = weights[controls].sum()
    if total > 0:
        weights[controls] *= len(controls) / total
    return weights


class NearestNeighborMatcher:
    """Greedy 1:k nearest-neighbour matching on the propensity score.

    Parameters
    ----------
    ratio
        Controls per treated unit.
    caliper
        Caliper width in units of ``caliper_scale`` (None = no caliper).
    caliper_scale
        ``"sd_logit"``: caliper x SD of the logit PS over all persons, matching on the
        logit PS (CohortMethod's "standardized logit"); ``"sd_ps"``: caliper x SD of the
        matching distance over all units (MatchIt's ``std.caliper = TRUE``; the
        probability scale unless ``distance = "logit"``); ``"pooled_sd"``: caliper x
        sqrt((var_treated + var_control) / 2) of the distance; ``"absolute"``: as given.
    distance
        ``"ps"`` or ``"logit"``; default: ``"logit"`` for ``sd_logit``, else ``"ps"``.
    replace
        Allow a control to be matched to several treated units.
    reuse_max
        With ``replace``, maximum uses per control (None = unlimited).
    order
        ``"largest"``, ``"smallest"``, ``"data"``, ``"random"`` (seeded) or
        ``"closest"`` (closest pair first).
    seed
        Seed for ``order = "random"``.
    exact
        Columns on which matched units must agree exactly (passed in ``fit(data=...)``).
    legacy_int_abs
        Reproduce MatchIt 4.5.1 bit for bit: its ``nn_matchC_vec`` compares distance
        differences through C's integer ``abs()``, which truncates them toward zero. On the
        probability scale every difference then counts as 0, so the caliper never binds
        and the lower-distance ("left") neighbour always wins. Off by default (the
        intended rule, exact distances).

    Attributes
    ----------
    result_ : MatchResult
    caliper_ : float or None
        Absolute caliper on the matching distance.

    Examples
    --------
    >>> import numpy as np
    >>> ps = np.array([0.2, 0.5, 0.45, 0.9, 0.21])
    >>> treat = np.array([1, 1, 0, 0, 0])
    >>> NearestNeighborMatcher().fit(ps, treat).result_.match_matrix.ravel().tolist()
    [4, 2]
    """

    def __init__(
        self,
        ratio: int = 1,
        caliper: float | None = None,
        caliper_scale: CaliperScale = "sd_ps",
        distance: Distance | None = None,
        replace: bool = False,
        reuse_max: int | None = None,
        order: Order = "largest",
        seed: int | None = None,
        exact: list[str] | None = None,
        legacy_int_abs: bool = False,
    ) -> None:
        self.ratio = ratio
        self.caliper = caliper
        self.caliper_scale = caliper_scale
        self.distance = distance
        self.replace = replace
        self.reuse_max = reuse_max
        self.order = order
        self.seed = seed
        self.exact = exact
        self.legacy_int_abs = legacy_int_abs

    def _validate(self) -> Distance:
        if not isinstance(self.ratio, int | np.integer) or self.ratio < 1:
            raise InputDataError(f"matching ratio must be a positive integer, not {self.ratio!r}")
        if self.order not in ("largest", "smallest", "data", "random", "closest"):
            raise InputDataError(f"unknown matching order {self.order!r}")
        if self.order == "random" and self.seed is None:
            raise InputDataError("order='random' needs a seed (results must be reproducible)")
        if self.caliper_scale not in ("sd_logit", "sd_ps", "pooled_sd", "absolute"):
            raise InputDataError(f"unknown caliper scale {self.caliper_scale!r}")
        if self.caliper is not None and not self.caliper > 0:
            raise InputDataError(f"caliper must be positive, not {self.caliper!r}")
        dist = self.distance or ("logit" if self.caliper_scale == "sd_logit" else "ps")
        if dist not in ("ps", "logit"):
            raise InputDataError(f"distance must be 'ps' or 'logit', not {dist!r}")
        if self.caliper_scale == "sd_logit" and dist != "logit":
            raise InputDataError(
                "caliper_scale='sd_logit' matches on the logit PS: use distance='logit'"
            )
        return dist

    def fit(
        self,
        ps: np.ndarray | pd.Series,
        treatment: np.ndarray | pd.Series,
        *,
        logit_ps: np.ndarray | pd.Series | None = None,
        data: pd.DataFrame | None = None,
    ) -> NearestNeighborMatcher:
        """Match treated (1) to control (0) units.

        Parameters
        ----------
        ps
            Propensity score (probability scale) per row.
        treatment
            0/1 per row.
        logit_ps
            Linear predictor, if available (more precise than ``logit(ps)`` near 0/1).
        data
            Frame holding the ``exact`` columns (row-aligned), required when ``exact``.

        Returns
        -------
        NearestNeighborMatcher
            ``self``, with ``result_`` set.
        """
        dist_kind = self._validate()
        p = np.asarray(ps, dtype=float)
        t = np.asarray(treatment)
        if p.ndim != 1 or t.shape != p.shape:
            raise InputDataError("ps and treatment must be 1-D arrays of the same length")
        if np.isnan(p).any():
            raise InputDataError(f"propensity score has {int(np.isnan(p).sum())} missing value(s)")
        if not np.all((t == 0) | (t == 1)):
            raise InputDataError("treatment must be coded 0/1")
        t = t.astype(bool)
        n1 = int(t.sum())
        n0 = len(t) - n1
        if n1 == 0 or n0 == 0:
            raise NotEstimable(f"matching needs both arms: {n1} treated and {n0} control persons")
        if dist_kind == "logit":
            if logit_ps is not None:
                d = np.asarray(logit_ps, dtype=float)
            else:
                with np.errstate(divide="ignore"):
                    d = np.log(p) - np.log1p(-p)
            if not np.all(np.isfinite(d)):
                raise InputDataError("logit PS is infinite for PS of exactly 0 or 1")
        else:
            d = p
        cal = self._absolute_caliper(d, t)
        self.caliper_ = cal
        order_arg = self._treated_order(d[t])
        if self.replace:
            reuse: int | None = self.reuse_max
        else:
            reuse = 1
        mm = np.full((n1, self.ratio), -1, dtype=np.int64)
        t_rows = np.flatnonzero(t)
        if self.exact:
            if data is None:
                raise InputDataError("exact matching needs data= with the exact columns")
            missing = [c for c in self.exact if c not in data.columns]
            if missing:
                raise InputDataError(f"exact-matching column(s) not in the data: {missing}")
            for c in self.exact:
                n_na = int(data[c].isna().sum())
                if n_na:
                    raise InputDataError(f"exact-matching column {c!r} has {n_na} missing value(s)")
            keys = pd.MultiIndex.from_frame(data[list(self.exact)].reset_index(drop=True))
            codes = np.asarray(pd.factorize(keys)[0])
            t_code = codes[t_rows]
            rank_in_order = np.empty(n1, dtype=np.int64)
            if order_arg is not None:
                rank_in_order[order_arg] = np.arange(n1)
            for g in np.unique(t_code):
                rows_g = np.flatnonzero(codes == g)
                tr_g = np.flatnonzero(t_code == g)  # indices into treated
                sub_order = None
                if order_arg is not None:
                    sub_order = np.argsort(rank_in_order[tr_g], kind="stable")
                sub = greedy_match_1d(
                    d[rows_g], t[rows_g], sub_order, self.ratio, cal, reuse, self.legacy_int_abs
                )
                ok = sub >= 0
                block = np.full(sub.shape, -1, dtype=np.int64)
                block[ok] = rows_g[sub[ok]]
                mm[tr_g] = block
        else:
            mm = greedy_match_1d(d, t, order_arg, self.ratio, cal, reuse, self.legacy_int_abs)
        self.result_ = self._result(mm, t_rows, d, cal, n1, n0)
        return self

    def _absolute_caliper(self, d: np.ndarray, t: np.ndarray) -> float | None:
        if self.caliper is None:
            return None
        if self.caliper_scale == "absolute":
            return float(self.caliper)
        if self.caliper_scale in ("sd_logit", "sd_ps"):
            sd = float(np.std(d, ddof=1))
        else:
            sd = float(np.sqrt((np.var(d[t], ddof=1) + np.var(d[~t], ddof=1)) / 2))
        return float(self.caliper) * sd

    def _treated_order(self, dt: np.ndarray) -> np.ndarray | None:
        if self.order == "largest":
            return np.argsort(-dt, kind="stable")
        if self.order == "smallest":
            return np.argsort(dt, kind="stable")
        if self.order == "data":
            return np.arange(len(dt))
        if self.order == "random":
            return np.random.default_rng(self.seed).permutation(len(dt))
        return None

    def _result(
        self,
        mm: np.ndarray,
        t_rows: np.ndarray,
        d: np.ndarray,
        cal: float | None,
        n1: int,
        n0: int,
    ) -> MatchResult:
        n = len(d)
        has = mm >= 0
        n_pairs = int(has.sum())
        settings: dict[str, object] = {
            "ratio": self.ratio,
            "caliper": self.caliper,
            "caliper_scale": self.caliper_scale,
            "caliper_absolute": cal,
            "distance": self.distance or ("logit" if self.caliper_scale == "sd_logit" else "ps"),
            "replace": self.replace,
            "reuse_max": self.reuse_max,
            "order": self.order,
            "seed": self.seed,
            "exact": list(self.exact or []),
            "legacy_int_abs": self.legacy_int_abs,
        }
        if n_pairs == 0:
            reason = (
                f"no control within the caliper ({cal:.6g} on the {settings['distance']} scale)"
                if cal is not None
                else "no eligible control (exact-matching strata without controls)"
            )
            return MatchResult(
                t_rows,
                mm,
                np.zeros(n),
                np.zeros(n, dtype=np.int64) if not self.replace else None,
                d,
                cal,
                n1,
                n0,
                0,
                0,
                reason,
                settings,
            )
        weights = matchit_weights(t_rows, mm, n)
        subclass: np.ndarray | None = None
        if not self.replace:
            subclass = np.zeros(n, dtype=np.int64)
            matched_t = np.flatnonzero(has.any(axis=1))
            ids = np.arange(1, len(matched_t) + 1)
            subclass[t_rows[matched_t]] = ids
            set_of_t = np.zeros(len(t_rows), dtype=np.int64)
            set_of_t[matched_t] = ids
            ti, ri = np.nonzero(has)
            subclass[mm[ti, ri]] = set_of_t[ti]
        return MatchResult(
            treated_rows=t_rows,
            match_matrix=mm,
            weights=weights,
            subclass=subclass,
            distance=d,
            caliper=cal,
            n_treated=n1,
            n_control=n0,
            n_treated_matched=int(has.any(axis=1).sum()),
            n_control_matched=int(np.count_nonzero(weights > 0)) - int(has.any(axis=1).sum()),
            reason=None,
            settings=settings,
        )
