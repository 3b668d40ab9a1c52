"""Study designs that answer strategy questions without immortal time.

- :mod:`cohort_etl.designs.target_trial`: target-trial emulation by clone-censor-weighting
  (strategy "exposure within a grace period" vs "never"), weighted Kaplan-Meier, risk
  differences, RMST, weighted Cox hazard ratio, bootstrap over persons;
- :mod:`cohort_etl.designs.landmark`: landmark analysis (alive and event-free at the
  landmark) and the landmark supermodel;
- :mod:`cohort_etl.designs.immortal_time`: the immortal-time diagnostic of a design.

The method choices are documented in docs/target_trial.md.
"""
