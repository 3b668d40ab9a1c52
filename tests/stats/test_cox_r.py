"""CoxPH and cox_zph against R survival 3.5 (run in the test through Rscript).

Each fixture runs one R script (quoted in its docstring), exports the data set R used and
R's numbers; the tests refit with :class:`cohort_etl.outcomes.cox.CoxPH` and require
agreement to 6 significant digits (``rtol=1e-6``). Published numbers from METHODS.md are
checked as well, at the precision they are quoted.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.stats.r_oracle import run_r

from cohort_etl.outcomes.cox import CoxPH, cox_zph

pytestmark = pytest.mark.r_oracle

RTOL = 1e-6
# R's coxph always reports Harrell's concordance; ours computes it on request.
Cox = partial(CoxPH, compute_concordance=True)


def close(ours: Any, theirs: Any, rtol: float = RTOL) -> None:
    np.testing.assert_allclose(
        np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float), rtol=rtol, atol=0
    )


# R helper returning everything we compare for one fit.
R_FIT_PARTS = r"""
library(survival)
test <- function(stat, df) c(stat, df, pchisq(stat, df, lower.tail = FALSE))
parts <- function(f) {
  s <- summary(f)
  out <- list(
    coef = unname(coef(f)),
    se = unname(sqrt(diag(if (is.null(f$naive.var)) f$var else f$naive.var))),
    var_se = unname(sqrt(diag(vcov(f)))),
    loglik = f$loglik,
    # summary() rounds the test statistics to 2 decimals: recompute them unrounded.
    lr = test(2 * diff(f$loglik), length(coef(f))),
    wald = test(unname(f$wald.test), length(coef(f))),
    score = test(unname(f$score), length(coef(f))),
    z = unname(s$coefficients[, "z"]), p = unname(s$coefficients[, ncol(s$coefficients)]),
    lower = unname(s$conf.int[, "lower .95"]), upper = unname(s$conf.int[, "upper .95"]),
    iter = f$iter, n = f$n, nevent = f$nevent,
    concordance = unname(f$concordance["concordance"]))
  if (!is.null(f$naive.var)) {
    out$robust_se <- unname(sqrt(diag(f$var)))
    out$robust_score <- test(unname(f$rscore), length(coef(f)))
  }
  out
}
zph <- function(f, tr) {
  z <- cox.zph(f, transform = tr)
  list(chisq = unname(z$table[, "chisq"]), df = unname(z$table[, "df"]),
       p = unname(z$table[, "p"]), terms = rownames(z$table))
}
"""


def check_fit(fit: CoxPH, r: dict[str, Any]) -> None:
    """Compare every reported quantity of ``fit`` with R's ``parts(f)``."""
    res = fit.result_
    close(fit.coef_, r["coef"])
    close(fit.se_, r["se"])
    close(np.sqrt(np.diag(fit.var_)), r["var_se"])
    close([fit.loglik_null_, fit.loglik_], r["loglik"])
    close([res.lr_test.statistic, res.lr_test.df, res.lr_test.p_value], r["lr"])
    close([res.wald_test.statistic, res.wald_test.df, res.wald_test.p_value], r["wald"])
    close([res.score_test.statistic, res.score_test.df, res.score_test.p_value], r["score"])
    close(res.z, r["z"])
    close(res.p_value, r["p"])
    close(res.ci_lower, r["lower"])
    close(res.ci_upper, r["upper"])
    assert res.n == r["n"]
    assert res.n_events == r["nevent"]
    assert fit.iterations_ == r["iter"]
    assert res.concordance is not None
    close(res.concordance, r["concordance"])
    if "robust_se" in r:
        assert fit.robust_se_ is not None
        close(fit.robust_se_, r["robust_se"])
        rs = res.robust_score_test
        assert rs is not None
        close([rs.statistic, rs.df, rs.p_value], r["robust_score"])
    else:
        assert fit.robust_se_ is None and res.robust_score_test is None


def check_zph(fit: CoxPH, r: dict[str, Any], transform: str) -> None:
    table = cox_zph(fit, transform=transform).table  # type: ignore[arg-type]
    assert list(table.index) == [*fit.names_, "GLOBAL"]
    close(table["chisq"], r["chisq"])
    close(table["df"], r["df"])
    close(table["p"], r["p"])


# --------------------------------------------------------------------------- lung


@pytest.fixture(scope="module")
def lung() -> dict[str, Any]:
    """R code::

    d <- survival::lung
    d$status <- d$status - 1
    cc <- d[complete.cases(d[, c("time", "status", "age", "sex", "ph.ecog", "inst")]), ]
    set.seed(20261121); cc$w <- round(runif(nrow(cc), 0.5, 2), 3)
    sex     <- coxph(Surv(time, status) ~ sex, data = d)
    multi   <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = cc)
    breslow <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = cc, ties = "breslow")
    strat   <- coxph(Surv(time, status) ~ age + strata(sex), data = cc)
    strat2  <- coxph(Surv(time, status) ~ age + ph.ecog + strata(sex), data = cc)
    clus    <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = cc, cluster = inst)
    rob     <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = cc, robust = TRUE)
    wtd     <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = cc, weights = w)
    wtdcl   <- coxph(Surv(time, status) ~ age + sex + ph.ecog + strata(inst > 10),
                     data = cc, weights = w, cluster = inst, ties = "breslow")
    cox.zph(multi, transform = "km" / "rank" / "identity")
    """
    return run_r(
        R_FIT_PARTS
        + r"""
d <- survival::lung
d$status <- d$status - 1
cc <- d[complete.cases(d[, c("time", "status", "age", "sex", "ph.ecog", "inst")]), ]
set.seed(20261121); cc$w <- round(runif(nrow(cc), 0.5, 2), 3)
cc$big_inst <- as.integer(cc$inst > 10)
sex <- coxph(Surv(time, status) ~ sex, data = d)
multi <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = cc)
breslow <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = cc, ties = "breslow")
strat <- coxph(Surv(time, status) ~ age + strata(sex), data = cc)
strat2 <- coxph(Surv(time, status) ~ age + ph.ecog + strata(sex), data = cc)
clus <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = cc, cluster = inst)
rob <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = cc, robust = TRUE)
wtd <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = cc, weights = w)
wtdcl <- coxph(Surv(time, status) ~ age + sex + ph.ecog + strata(big_inst), data = cc,
               weights = w, cluster = inst, ties = "breslow")
result <- list(all = d[, c("time", "status", "sex")], cc = cc,
  sex = parts(sex), multi = parts(multi), breslow = parts(breslow), strat = parts(strat),
  strat2 = parts(strat2), clus = parts(clus), rob = parts(rob), wtd = parts(wtd),
  wtdcl = parts(wtdcl),
  zph_km = zph(multi, "km"), zph_rank = zph(multi, "rank"), zph_identity = zph(multi, "identity"),
  zph_strat = zph(strat2, "km"))
"""
    )


MULTI = ["age", "sex", "ph.ecog"]


def test_lung_sex_matches_r_and_published(lung: dict[str, Any]) -> None:
    """coxph(Surv(time, status) ~ sex, data = lung); METHODS.md: coef -0.5310, HR 0.5880,
    SE 0.1672, p = 0.00149, 95% CI 0.4237-0.816."""
    d = lung["all"]
    fit = Cox().fit(d["time"], d["status"], d[["sex"]])
    check_fit(fit, lung["sex"])
    res = fit.result_
    assert round(float(res.coef[0]), 4) == -0.5310
    assert round(float(res.hazard_ratio[0]), 4) == 0.5880
    assert round(float(res.se[0]), 4) == 0.1672
    assert round(float(res.p_value[0]), 5) == 0.00149
    assert round(float(res.ci_lower[0]), 4) == 0.4237
    assert round(float(res.ci_upper[0]), 3) == 0.816


def test_lung_multivariable_efron(lung: dict[str, Any]) -> None:
    """coxph(Surv(time, status) ~ age + sex + ph.ecog, data = cc)  (complete cases)."""
    cc = lung["cc"]
    fit = Cox().fit(cc["time"], cc["status"], cc[MULTI])
    check_fit(fit, lung["multi"])
    assert fit.names_ == MULTI
    assert list(fit.summary.index) == MULTI


def test_lung_breslow_differs_from_efron_as_in_r(lung: dict[str, Any]) -> None:
    """coxph(..., ties = "breslow") vs the Efron default: both match R, and differ."""
    cc = lung["cc"]
    fit = Cox(ties="breslow").fit(cc["time"], cc["status"], cc[MULTI])
    check_fit(fit, lung["breslow"])
    assert abs(lung["breslow"]["coef"][1] - lung["multi"]["coef"][1]) > 1e-4


def test_lung_stratified(lung: dict[str, Any]) -> None:
    """coxph(Surv(time, status) ~ age + strata(sex)) and ~ age + ph.ecog + strata(sex)."""
    cc = lung["cc"]
    check_fit(Cox().fit(cc["time"], cc["status"], cc[["age"]], strata=cc["sex"]), lung["strat"])
    fit2 = Cox().fit(cc["time"], cc["status"], cc[["age", "ph.ecog"]], strata=cc["sex"])
    check_fit(fit2, lung["strat2"])
    check_zph(fit2, lung["zph_strat"], "km")


def test_lung_robust_cluster(lung: dict[str, Any]) -> None:
    """coxph(..., cluster = inst) and coxph(..., robust = TRUE): grouped dfbeta sandwich."""
    cc = lung["cc"]
    fit = Cox().fit(cc["time"], cc["status"], cc[MULTI], cluster=cc["inst"])
    check_fit(fit, lung["clus"])
    assert fit.result_.n_clusters == cc["inst"].nunique()
    fit_rob = Cox(robust=True).fit(cc["time"], cc["status"], cc[MULTI])
    check_fit(fit_rob, lung["rob"])


def test_lung_weights(lung: dict[str, Any]) -> None:
    """coxph(..., weights = w) and weights + strata + cluster + Breslow."""
    cc = lung["cc"]
    check_fit(Cox().fit(cc["time"], cc["status"], cc[MULTI], weights=cc["w"]), lung["wtd"])
    fit = Cox(ties="breslow").fit(
        cc["time"],
        cc["status"],
        cc[MULTI],
        weights=cc["w"],
        cluster=cc["inst"],
        strata=cc["big_inst"],
    )
    check_fit(fit, lung["wtdcl"])


@pytest.mark.parametrize("transform", ["km", "rank", "identity"])
def test_lung_cox_zph(lung: dict[str, Any], transform: str) -> None:
    """cox.zph(coxph(Surv(time, status) ~ age + sex + ph.ecog), transform = ...)."""
    cc = lung["cc"]
    fit = Cox().fit(cc["time"], cc["status"], cc[MULTI])
    check_zph(fit, lung[f"zph_{transform}"], transform)


# --------------------------------------------------------------------------- rossi


@pytest.fixture(scope="module")
def rossi() -> dict[str, Any]:
    """R code::

    r <- carData::Rossi
    f <- coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio, data = r)
    # factors coded 0/1 as model.matrix does: finyes, raceother, wexpyes, marnot married,
    # paroyes
    cox.zph(f, transform = "km" / "rank" / "identity")
    """
    return run_r(
        R_FIT_PARTS
        + r"""
r <- carData::Rossi
f <- coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio, data = r)
mm <- model.matrix(f)
d <- data.frame(week = r$week, arrest = r$arrest, mm, check.names = FALSE)
result <- list(d = d, names = colnames(mm), fit = parts(f),
  zph_km = zph(f, "km"), zph_rank = zph(f, "rank"), zph_identity = zph(f, "identity"))
"""
    )


def test_rossi_efron_matches_r_and_published(rossi: dict[str, Any]) -> None:
    """METHODS.md (rossi, Efron): fin -0.3794 (SE 0.1914), age -0.0574, prio 0.0915,
    log-likelihood -658.748."""
    d = rossi["d"]
    names = rossi["names"]
    fit = Cox().fit(d["week"], d["arrest"], d[names])
    check_fit(fit, rossi["fit"])
    coef = dict(zip(fit.names_, fit.coef_, strict=True))
    se = dict(zip(fit.names_, fit.se_, strict=True))
    assert round(coef["finyes"], 4) == -0.3794
    assert round(se["finyes"], 4) == 0.1914
    assert round(coef["age"], 4) == -0.0574
    assert round(coef["prio"], 4) == 0.0915
    assert round(fit.loglik_, 3) == -658.748


@pytest.mark.parametrize("transform", ["km", "rank", "identity"])
def test_rossi_cox_zph(rossi: dict[str, Any], transform: str) -> None:
    """cox.zph(coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio))."""
    d = rossi["d"]
    fit = Cox().fit(d["week"], d["arrest"], d[rossi["names"]])
    check_zph(fit, rossi[f"zph_{transform}"], transform)


# --------------------------------------------------------------------------- heart (jasa1)


@pytest.fixture(scope="module")
def heart() -> dict[str, Any]:
    """R code::

    h <- survival::heart       # jasa1: (start, stop] rows, transplant time-varying
    tv    <- coxph(Surv(start, stop, event) ~ transplant, data = h)
    tva   <- coxph(Surv(start, stop, event) ~ transplant + age, data = h, cluster = id)
    tvb   <- coxph(Surv(start, stop, event) ~ transplant + age + surgery, data = h,
                   ties = "breslow")
    tvs   <- coxph(Surv(start, stop, event) ~ transplant + age + strata(surgery), data = h)
    naive <- coxph(Surv(futime, fustat) ~ transplant, data = survival::jasa)
    cox.zph(tvb)
    """
    return run_r(
        R_FIT_PARTS
        + r"""
h <- survival::heart
h$transplant <- as.integer(as.character(h$transplant))
tv <- coxph(Surv(start, stop, event) ~ transplant, data = h)
tva <- coxph(Surv(start, stop, event) ~ transplant + age, data = h, cluster = id)
tvb <- coxph(Surv(start, stop, event) ~ transplant + age + surgery, data = h, ties = "breslow")
tvs <- coxph(Surv(start, stop, event) ~ transplant + age + strata(surgery), data = h)
j <- survival::jasa
naive <- coxph(Surv(futime, fustat) ~ transplant, data = j)
result <- list(h = h, j = j[, c("futime", "fustat", "transplant")], tv = parts(tv),
  tva = parts(tva), tvb = parts(tvb), tvs = parts(tvs), naive = parts(naive),
  zph_tvb = zph(tvb, "km"), zph_tvb_rank = zph(tvb, "rank"))
"""
    )


def test_heart_time_varying_transplant(heart: dict[str, Any]) -> None:
    """coxph(Surv(start, stop, event) ~ transplant, data = heart): METHODS.md quotes HR 1.14
    time-varying vs 0.27 for the naive ever-transplanted model on jasa."""
    h = heart["h"]
    fit = Cox().fit(h["stop"], h["event"], h[["transplant"]], entry=h["start"])
    check_fit(fit, heart["tv"])
    assert round(float(fit.hazard_ratios_[0]), 2) == 1.14
    j = heart["j"]
    naive = Cox().fit(j["futime"], j["fustat"], j[["transplant"]])
    check_fit(naive, heart["naive"])
    assert round(float(naive.hazard_ratios_[0]), 2) == 0.27


def test_heart_counting_process_variants(heart: dict[str, Any]) -> None:
    """(start, stop] with age and robust cluster on id; Breslow; strata(surgery)."""
    h = heart["h"]
    fit = Cox().fit(
        h["stop"], h["event"], h[["transplant", "age"]], entry=h["start"], cluster=h["id"]
    )
    check_fit(fit, heart["tva"])
    cols = ["transplant", "age", "surgery"]
    fitb = Cox(ties="breslow").fit(h["stop"], h["event"], h[cols], entry=h["start"])
    check_fit(fitb, heart["tvb"])
    check_zph(fitb, heart["zph_tvb"], "km")
    check_zph(fitb, heart["zph_tvb_rank"], "rank")
    fits = Cox().fit(
        h["stop"], h["event"], h[["transplant", "age"]], entry=h["start"], strata=h["surgery"]
    )
    check_fit(fits, heart["tvs"])


# --------------------------------------------------------------------------- simulated


def _simulated(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.integers(0, 2, n).astype(float)
    x3 = rng.integers(0, 3, n).astype(float)
    stratum = rng.integers(0, 4, n)
    hazard = np.exp(0.4 * x1 - 0.5 * x2 + 0.2 * x3)
    t = rng.exponential(100 / hazard)
    c = rng.uniform(20, 300, n)
    stop = np.ceil(np.minimum(t, c) / 7)  # weekly: many ties
    entry = np.floor(rng.uniform(0, 1, n) * stop * (rng.uniform(size=n) < 0.4))
    return pd.DataFrame(
        {
            "start": entry,
            "stop": stop,
            "event": (t <= c).astype(int),
            "x1": x1,
            "x2": x2,
            "x3": x3,
            "stratum": stratum,
            "cl": rng.integers(0, 150, n),
            "w": np.round(rng.uniform(0.2, 3, n), 3),
        }
    )


@pytest.fixture(scope="module")
def simulated() -> dict[str, Any]:
    """A seeded data set with heavy ties, left truncation, strata, clusters and weights.

    R code::

        f1 <- coxph(Surv(stop, event) ~ x1 + x2 + x3, data = d)
        f2 <- coxph(Surv(start, stop, event) ~ x1 + x2 + x3 + strata(stratum), data = d,
                    weights = w, cluster = cl)
        f3 <- coxph(Surv(start, stop, event) ~ x1 + x2 + x3, data = d, ties = "breslow",
                    weights = w)
        cox.zph(f1), cox.zph(f2, "identity"), cox.zph(f2, "km"), cox.zph(f3, "rank")
    """
    d = _simulated(seed=7, n=3000)
    out = run_r(
        R_FIT_PARTS
        + r"""
f1 <- coxph(Surv(stop, event) ~ x1 + x2 + x3, data = d)
f2 <- coxph(Surv(start, stop, event) ~ x1 + x2 + x3 + strata(stratum), data = d,
            weights = w, cluster = cl)
f3 <- coxph(Surv(start, stop, event) ~ x1 + x2 + x3, data = d, ties = "breslow", weights = w)
result <- list(f1 = parts(f1), f2 = parts(f2), f3 = parts(f3), z1 = zph(f1, "km"),
               z2 = zph(f2, "identity"), z2k = zph(f2, "km"), z3 = zph(f3, "rank"))
""",
        {"d": d},
    )
    out["d"] = d
    return out


def test_simulated_ties_truncation_strata_weights(simulated: dict[str, Any]) -> None:
    """Heavily tied weekly times, (start, stop], strata, weights, clusters vs R."""
    d = simulated["d"]
    cols = ["x1", "x2", "x3"]
    f1 = Cox().fit(d["stop"], d["event"], d[cols])
    check_fit(f1, simulated["f1"])
    check_zph(f1, simulated["z1"], "km")
    f2 = Cox().fit(
        d["stop"],
        d["event"],
        d[cols],
        entry=d["start"],
        strata=d["stratum"],
        weights=d["w"],
        cluster=d["cl"],
    )
    check_fit(f2, simulated["f2"])
    check_zph(f2, simulated["z2"], "identity")
    check_zph(f2, simulated["z2k"], "km")
    f3 = Cox(ties="breslow").fit(d["stop"], d["event"], d[cols], entry=d["start"], weights=d["w"])
    check_fit(f3, simulated["f3"])
    check_zph(f3, simulated["z3"], "rank")


# --------------------------------------------------------------------------- monotone


def test_monotone_likelihood_flagged_like_r() -> None:
    """No events when x = 1: R warns "Loglik converged before variable 1; coefficient may
    be infinite". R code::

        f <- coxph(Surv(t, e) ~ x + z, data = d)
        list(coef = coef(f), warnings = <captured warnings>)
    """
    rng = np.random.default_rng(3)
    n = 60
    x = (np.arange(n) % 2).astype(float)
    d = pd.DataFrame(
        {
            "t": rng.exponential(1, n).round(2) + 0.01,
            "e": np.where(x == 1, 0, rng.integers(0, 2, n)),
            "x": x,
            "z": rng.normal(size=n),
        }
    )
    r = run_r(
        "library(survival); f <- coxph(Surv(t, e) ~ x + z, data = d);"
        "result <- list(coef = unname(coef(f)), iter = f$iter, loglik = f$loglik)",
        {"d": d},
    )
    assert any("Loglik converged before variable  1 " in w for w in r["_warnings"])
    fit = Cox(allow_infinite=True).fit(d["t"], d["e"], d[["x", "z"]])
    close(fit.coef_, r["coef"])
    close([fit.loglik_null_, fit.loglik_], r["loglik"])
    assert fit.iterations_ == r["iter"]
    assert len(fit.warnings_) == 1 and "'x'" in fit.warnings_[0] and "'z'" not in fit.warnings_[0]


# --------------------------------------------------------------------------- timefix


def test_near_tied_times_are_merged_like_r_timefix() -> None:
    """Times that differ by ~1e-12 (floating-point noise) are one tied time in R
    (``coxph.control(timefix = TRUE)``, the default) and distinct with ``timefix = FALSE``.
    R code::

        f1 <- coxph(Surv(start, stop, event) ~ x + z, data = d)
        f0 <- coxph(Surv(start, stop, event) ~ x + z, data = d,
                    control = coxph.control(timefix = FALSE))
        cox.zph(f1, "rank"); cox.zph(f1, "km")
    """
    rng = np.random.default_rng(99)
    n = 400
    x = rng.normal(size=n)
    base = np.ceil(rng.exponential(30 / np.exp(0.5 * x))).clip(max=60)
    jitter = np.where(rng.uniform(size=n) < 0.5, base * 1e-12, 0.0)
    entry = np.where(rng.uniform(size=n) < 0.3, np.floor(base / 2), 0.0)
    d = pd.DataFrame(
        {
            "start": entry,
            "stop": base + jitter,
            "event": rng.integers(0, 2, n),
            "x": x,
            "z": rng.integers(0, 2, n).astype(float),
        }
    )
    r = run_r(
        R_FIT_PARTS
        + r"""
f1 <- coxph(Surv(start, stop, event) ~ x + z, data = d)
f0 <- coxph(Surv(start, stop, event) ~ x + z, data = d,
            control = coxph.control(timefix = FALSE))
result <- list(f1 = parts(f1), f0 = parts(f0), zr = zph(f1, "rank"), zk = zph(f1, "km"))
""",
        {"d": d},
    )
    assert abs(r["f1"]["coef"][0] - r["f0"]["coef"][0]) > 1e-6  # the merge matters
    fit = Cox().fit(d["stop"], d["event"], d[["x", "z"]], entry=d["start"])
    check_fit(fit, r["f1"])
    check_zph(fit, r["zr"], "rank")
    check_zph(fit, r["zk"], "km")
    exact = Cox(timefix=False).fit(d["stop"], d["event"], d[["x", "z"]], entry=d["start"])
    check_fit(exact, r["f0"])
