"""Training and evaluation: from a labelled table to a calibrated, compared, served model.

dataset (what is trained on) -> split (which rows when) -> model + calibrate (the served
artifact) -> baselines (what it must beat) -> evaluate (metrics with intervals) ->
plots; pipeline runs them in order and fills `outcome.TrainOutcome` for tracking.
Nothing heavy is imported here, so `training.outcome` stays cheap to import.
"""
