"""Parameters of the synthetic CDM: sizes, calendar, and the true effects.

Every number the generator draws from is here, so a run is fully described by one
:class:`SynthParams` (it is written to ``synthetic_truth.parameters``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from cohort_etl.errors import ConfigError

#: Upper bound for ``persons``: far above any benchmark, low enough to stop typos.
MAX_PERSONS = 50_000_000
#: Persons per generation block. Random streams and ids are keyed by block, so the
#: output never depends on how blocks are grouped into write chunks.
BLOCK_SIZE = 10_000

EPOCH = dt.date(1970, 1, 1)


def day(d: dt.date) -> int:
    """Days since 1970-01-01 (the Arrow date32 value of ``d``)."""
    return (d - EPOCH).days


@dataclass(frozen=True)
class SalvageModel:
    """Salvage after relapse following CAR-T: choice and complete-remission probabilities.

    Defaults follow the seed study B (CR 61% CAR-T reinfusion, 71% monoclonal antibody,
    50% chemotherapy + TKI, 19% chemotherapy alone).
    """

    p_reinfusion: float = 0.22
    p_mab: float = 0.36
    p_chemo_tki: float = 0.35
    p_chemo: float = 0.28
    cr_reinfusion: float = 0.61
    cr_mab: float = 0.71
    cr_chemo_tki: float = 0.50
    cr_chemo: float = 0.19
    #: CR probability multiplier for CNS relapse / non-CNS extramedullary relapse
    cr_factor_cns: float = 1.45
    cr_factor_emd: float = 0.3
    #: share of relapsing patients who receive salvage therapy (others: palliative care)
    p_salvage: float = 0.88
    #: share of CNS / non-CNS extramedullary relapses with marrow involvement too
    #: (combined relapse); drawn from the side stream (see natural_history.py)
    p_combined_given_emd: float = 0.4
    #: share of salvage non-responders given a second salvage line, started this many
    #: days after the failed response assessment (side stream)
    p_second_line_given_no_cr: float = 0.6
    second_line_gap_days: tuple[int, int] = (7, 21)


@dataclass(frozen=True)
class SynthParams:
    """Everything that defines one synthetic CDM.

    Parameters
    ----------
    seed : int
        Master seed; every random stream derives from it.
    persons : int
        Background population size (the ALL subset comes on top of it).
    n_core : int
        CAR-T-treated relapsed/refractory B-ALL patients (the study A index population).
    n_auto_hsct, n_t_all, n_aml, n_cll, n_dlbcl, n_burkitt, n_no_rr, n_all_no_cart : int
        Noise groups (see docs/synthetic.md): R/R B-ALL with autologous HSCT after CAR-T,
        T-ALL / AML / CLL / DLBCL / deprecated-concept leukemia patients given CAR-T,
        B-ALL given CAR-T without prior R/R evidence, ALL patients never given CAR-T.
    hsct_hr_os : float
        True hazard ratio of death after allogeneic HSCT (applied from the HSCT date on).
    hsct_hr_relapse : float
        True hazard ratio of relapse after allogeneic HSCT.
    """

    seed: int = 42
    persons: int = 20_000
    start_date: dt.date = dt.date(2012, 1, 1)
    cutoff_date: dt.date = dt.date(2025, 6, 30)
    first_cart_date: dt.date = dt.date(2017, 10, 1)
    # ALL enriched subset
    n_core: int = 430
    n_auto_hsct: int = 10
    n_t_all: int = 20
    n_aml: int = 12
    n_cll: int = 15
    n_dlbcl: int = 60
    n_burkitt: int = 5
    n_no_rr: int = 25
    n_all_no_cart: int = 300
    # disease and treatment
    p_ph_positive: float = 0.28
    p_cr_after_cart: float = 0.94
    p_mrd_negative_given_cr: float = 0.8
    hsct_window_days: int = 180
    #: logistic model of the decision to consolidate with allo-HSCT (among CR patients)
    hsct_intercept: float = 0.45
    hsct_coef_age10: float = -0.25  # per 10 years above 30
    hsct_coef_burden: float = -0.35  # per prior line beyond the first
    hsct_coef_mrd_negative: float = 0.9
    hsct_coef_ph: float = 0.3
    hsct_median_days: float = 75.0
    # hazards (per year) and true effects
    relapse_rate: float = 0.17
    death_rate: float = 0.10
    death_coef_age10: float = 0.18
    death_coef_burden: float = 0.15
    hsct_hr_os: float = 0.6
    hsct_hr_relapse: float = 0.35
    nr_death_rate: float = 0.9
    post_relapse_death_rate: float = 0.75
    chemo_alone_hr_os: float = 2.63
    salvage_cr_hr_os: float = 0.45
    second_relapse_rate: float = 0.9
    loss_to_followup_rate: float = 0.08
    salvage: SalvageModel = field(default_factory=SalvageModel)
    # data quality (messy reality)
    p_unmapped_condition: float = 0.01
    p_source_only_all_dx: float = 0.05
    p_cart_drug_only: float = 0.1
    p_cart_procedure_only: float = 0.1
    n_outside_op_background: int = 50
    n_after_death_background: int = 20
    n_duplicate_background: int = 100
    n_outside_op_all: int = 8
    n_after_death_all: int = 6
    n_duplicate_all: int = 12
    # negative / positive control outcomes (synthetic/controls.py; own random stream)
    #: write the control outcomes' condition rows for the study-A population
    control_outcomes: bool = True
    #: injected systematic error of the controls: log-HR bias per outcome ~ N(mean, sd^2)
    control_bias_mean: float = 0.0
    control_bias_sd: float = 0.0

    def validate(self) -> SynthParams:
        """Raise :class:`ConfigError` naming the first bad parameter; return self."""
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"--seed must be a non-negative integer, got {self.seed!r}")
        if self.persons < 0:
            raise ConfigError(f"--persons must be >= 0, got {self.persons}")
        if self.persons > MAX_PERSONS:
            raise ConfigError(f"--persons {self.persons} is absurd (maximum {MAX_PERSONS:,})")
        for name in (
            "n_core",
            "n_auto_hsct",
            "n_t_all",
            "n_aml",
            "n_cll",
            "n_dlbcl",
            "n_burkitt",
            "n_no_rr",
            "n_all_no_cart",
        ):
            value = getattr(self, name)
            if value < 0 or value > 1_000_000:
                raise ConfigError(f"{name} must be between 0 and 1,000,000, got {value}")
        if not (self.start_date < self.first_cart_date < self.cutoff_date):
            raise ConfigError(
                f"dates must satisfy start_date < first_cart_date < cutoff_date, got "
                f"{self.start_date} / {self.first_cart_date} / {self.cutoff_date}"
            )
        for name in ("hsct_hr_os", "hsct_hr_relapse", "chemo_alone_hr_os", "salvage_cr_hr_os"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.control_bias_sd < 0 or abs(self.control_bias_mean) > 5:
            raise ConfigError(
                f"control_bias_sd must be >= 0 and |control_bias_mean| <= 5, got "
                f"{self.control_bias_sd} / {self.control_bias_mean}"
            )
        return self

    @property
    def n_all_subset(self) -> int:
        return (
            self.n_core
            + self.n_auto_hsct
            + self.n_t_all
            + self.n_aml
            + self.n_cll
            + self.n_dlbcl
            + self.n_burkitt
            + self.n_no_rr
            + self.n_all_no_cart
        )

    def as_rows(self) -> list[tuple[str, str]]:
        """(name, value) pairs for the ``parameters`` truth table."""
        out: list[tuple[str, str]] = []

        def walk(prefix: str, obj: Any) -> None:
            for f in dataclasses.fields(obj):
                value = getattr(obj, f.name)
                if dataclasses.is_dataclass(value):
                    walk(f"{prefix}{f.name}.", value)
                else:
                    out.append((f"{prefix}{f.name}", str(value)))

        walk("", self)
        return out
