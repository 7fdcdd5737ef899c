# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Account Radar walkthrough: snapshots → model → MLflow → explanations
#
# A tour for data scientists of the sample workspace: the point-in-time snapshot table,
# its labels and indicators, a training run, what that run recorded in MLflow, and the
# plots that explain the model (SHAP) and check its probabilities (calibration).
#
# **Before you start** (from the project root):
#
# ```sh
# make demo                  # sample workspace, ingested into out/radar.duckdb
# uv run radar build-features   # out/snapshots.parquet
# ```
#
# Then open this file as a notebook (`jupytext` pairs it; in JupyterLab: *Open With →
# Notebook*). It logs to a temporary MLflow store unless told otherwise (see below). Everything here calls the `features` and `training` packages; the notebook
# defines nothing of its own, so what you see is what `radar train` does.
#
# The test suite runs this notebook top to bottom on a small generated workspace, so it
# stays in step with the code.

# %%
import logging
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import pandas as pd
from IPython.display import Image, display

# The settings' paths (out/, mlruns/) are relative to the project root, like the CLI's.
if Path.cwd().name == "notebooks":
    os.chdir("..")
# MLflow's own progress bars and info lines would drown the outputs below.
os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
logging.getLogger("mlflow").setLevel(logging.WARNING)

from features.snapshot import feature_registry
from radar.settings import load_settings
from training.dataset import from_snapshots
from training.outcome import TARGETS
from training.pipeline import summary_table
from training.pyfunc import load_radar_model
from training.registry_view import model_versions
from training.track import configure, train_and_log

pd.set_option("display.width", 160)
settings = load_settings()  # ./radar.toml and RADAR_* variables, like every radar command

# %% [markdown]
# **Where this notebook logs.** It trains and registers a model. So that running it never
# adds a challenger to your real registry, it writes to a **temporary** MLflow store unless
# told otherwise: `RADAR_NOTEBOOK_REGISTRY=workspace` (set before starting the kernel) uses
# the configured store (`training.tracking_uri`), a folder keeps the store there; or edit
# `REGISTRY` below (a parameters cell, for papermill and friends).

# %% tags=["parameters"]
REGISTRY = os.environ.get("RADAR_NOTEBOOK_REGISTRY", "temporary")  # temporary | workspace | a folder

# %%
if REGISTRY != "workspace":
    store = Path(tempfile.mkdtemp(prefix="radar-notebook-") if REGISTRY == "temporary" else REGISTRY).resolve()
    store.mkdir(parents=True, exist_ok=True)
    training_settings = settings.training.model_copy(
        update={"tracking_uri": f"sqlite:///{store}/mlflow.db", "artifact_location": str(store / "artifacts")}
    )
    settings = settings.model_copy(update={"training": training_settings})
print("MLflow store:", settings.training.tracking_uri)
print("snapshots and workspace:", settings.output_dir)

# %% [markdown]
# ## 1. The snapshot table
#
# One row per account and **as-of date** (month-ends by default). Every feature uses only
# what was known before `as_of`; the labels look forward `horizon_days` from it:
# `churned` (the relationship ended: the churn risk in the next 90 days) and `expanded`
# (MRR grew by at least `expansion_min_pct`). A third label looks further, to each
# account's next renewal: `churned_by_renewal` (the account is gone by `next_renewal` plus
# the grace period, at least the horizon and at most `max_lead_days` ahead; the window
# ends on `label_end_by_renewal`). Renewal likelihood = 1 − P(churned_by_renewal). A label
# is empty when its window reaches past the end of the data — those rows are scored in
# production but never trained on.

# %%
snapshots_path = settings.output_dir / "snapshots.parquet"
snapshots = pd.read_parquet(snapshots_path)
print(
    f"{len(snapshots):,} snapshots of {snapshots.account_id.nunique():,} accounts, "
    f"as-of {snapshots.as_of.min()} … {snapshots.as_of.max()}"
)
snapshots[["account_id", "as_of", "segment", "mrr", "churned", "expanded", "churned_by_renewal", "next_renewal"]].head()

# %% [markdown]
# ## 2. Label rates
#
# Churn and expansion are rare, and their rates drift over time: this is why splits follow
# time (train on the past, test on the latest labelled dates) and why PR-AUC and the
# top-of-list metrics matter more than accuracy. Churn by the next renewal is more common
# than churn within 90 days (its window is longer), and it is known later: its rate at the
# latest dates covers only the accounts renewing soon.

# %%
labelled = snapshots.dropna(subset=["churned"])
rates = labelled.groupby("as_of")[["churned", "expanded", "churned_by_renewal"]].mean()
ax = rates.plot(title="Share of accounts that churn / expand within the horizon, churn by renewal", figsize=(9, 3.5))
ax.yaxis.set_major_formatter("{x:.0%}")
plt.show()
labelled.groupby("segment")[["churned", "expanded"]].agg(["mean", "sum"]).round(3)

# %% [markdown]
# ## 3. Indicators
#
# Every feature is declared once in the registry, with a plain-language description, its
# indicator family and the direction that is healthy. `radar features` prints the same list.

# %%
registry = feature_registry(settings)
catalog = pd.DataFrame(
    [{"feature": f.name, "family": f.family_name, "healthy": f.healthy, "description": f.description} for f in registry]
)
print(f"{len(catalog)} features in {catalog.family.nunique()} families")
catalog.groupby("family").size().sort_values(ascending=False).head(10)

# %% [markdown]
# How a few indicators differ between accounts that churned and those that stayed.
# Missing values are real information here (no survey answered, no tickets filed), so the
# share missing is shown too.

# %%
indicators = [
    f
    for f in ("health_score", "adoption_rate_90d", "active_users_trend_90d", "days_to_next_renewal")
    if f in labelled.columns
]
fig, axes = plt.subplots(1, len(indicators), figsize=(4 * len(indicators), 3))
for ax, name in zip(axes, indicators):
    for outcome_value, colour in ((0, "tab:blue"), (1, "tab:red")):
        values = labelled.loc[labelled.churned == outcome_value, name].dropna()
        ax.hist(values, bins=30, density=True, alpha=0.5, color=colour, label="churned" if outcome_value else "stayed")
    ax.set_title(name, fontsize=9)
axes[0].legend()
plt.tight_layout()
plt.show()
labelled[indicators].isna().mean().rename("share missing").round(3)

# %% [markdown]
# ## 4. Train the renewal model
#
# `train_and_log` is what `radar train --target renewal` runs: a time split with a purge
# gap (train / calibration / test), LightGBM with early stopping, a calibrator fitted on the
# calibration period, both baselines (the health score and a logistic regression), a
# rolling-origin backtest, bootstrap intervals — then the run is logged to MLflow and the
# model registered as a new **challenger** version of `radar-renewal`. `radar train`
# trains all three targets of `TARGETS`: renewal (churn in 90 days), upsell and
# next_renewal (churn by the next renewal, whose training rows keep only label windows
# that end before the next part: a gap of up to `max_lead_days`).

# %%
table = from_snapshots(snapshots, TARGETS["renewal"], settings)
outcome, tracked = train_and_log(table, settings, source=snapshots_path)
print(tracked)
summary_table(outcome)

# %% [markdown]
# The base rate is the typical risk the tiers are read against ("2.8x the typical churn
# risk"): the churn rate of the calibration period, recorded with the model. The test
# figures per band of days to the next renewal show where the model ranks and is
# calibrated well.

# %%
print(f"base rate: {outcome.base_rate:.1%} ({outcome.model.metadata['base_rate_from']})")
outcome.bands.round(3)

# %%
for warning in outcome.warnings:
    print("warning:", warning)

# %% [markdown]
# ## 5. Read the run back from MLflow
#
# Everything above is in the run, named for what it is (target, as-of range, model):
# parameters (model, split, settings, and `snapshot.*`: the build that made the table),
# the headline metrics (every metric, per segment too, in `evaluation/metrics.csv`; each
# backtest fold as a nested run), the dataset input with its digest and as-of range, the
# feature list with descriptions, plots, and the test rows used for promotion.

# %%
client = configure(settings.training)  # points MLflow at settings.training.tracking_uri
run = client.get_run(tracked.run_id)
print("run:", run.info.run_name)
params = pd.Series(run.data.params)
params[params.index.str.startswith(("split.", "dataset.", "snapshot.freq", "model.learning_rate", "model.num_leaves"))]

# %%
metrics = pd.Series(run.data.metrics)
test_metrics = metrics[metrics.index.str.match(r"test\.(model|health_score|logistic)\.(pr_auc|roc_auc|brier)$")]
test_metrics.sort_index().round(4)

# %%
dataset = run.inputs.dataset_inputs[0]
{
    "source": dataset.dataset.source,
    "digest": dataset.dataset.digest,
    **{tag.key: tag.value for tag in dataset.tags if tag.key in ("as_of_range", "rows")},
}

# %%
[a.path for a in client.list_artifacts(tracked.run_id)]

# %% [markdown]
# ## 6. What drives the model, and can its probabilities be trusted?
#
# The SHAP summary ranks features by their contribution to the (raw) risk score on test
# rows; each dot is one account-month, its colour the feature's value. The calibration
# curve compares predicted probabilities with observed churn rates on the test period:
# on the diagonal, "30%" means about 30 of 100 such accounts churn.

# %%
plots = Path(mlflow.artifacts.download_artifacts(run_id=tracked.run_id, artifact_path="plots"))
display(Image(filename=str(plots / "shap_summary.png")))

# %%
display(Image(filename=str(plots / "calibration.png")))

# %% [markdown]
# The same model, loaded from the registry the way serving does, scores the latest
# snapshots (whose outcome is not known yet) and explains the riskiest account: the
# features that pushed its risk up most.

# %%
model = load_radar_model(tracked.model_uri)
latest = snapshots[snapshots.as_of == snapshots.as_of.max()]
riskiest = latest.iloc[[model.predict_proba(latest).argmax()]]
contributions, base = model.contributions(riskiest)
drivers = (
    pd.DataFrame(
        {
            "feature": model.features,
            "contribution": contributions[0],
            "value": riskiest[model.features].iloc[0].to_numpy(),
        }
    )
    .assign(description=lambda d: d.feature.map(outcome.feature_descriptions))
    .sort_values("contribution", ascending=False)
    .head(8)
)
print(
    f"{riskiest.account_id.iloc[0]} on {riskiest.as_of.iloc[0]:%Y-%m-%d}: "
    f"P(churn) = {model.predict_proba(riskiest)[0]:.1%}"
)
drivers

# %% [markdown]
# ## 7. Versions and promotion
#
# Each training run adds a challenger version (here in the notebook's store). `radar
# promote renewal` makes it champion only if it is better than the current champion on
# the same test rows in at least `promotion_min_probability` (90%) of paired bootstrap
# resamples of accounts (`radar train --promote` does both); `radar promote renewal --to
# VERSION` rolls back; `radar models` lists versions, aliases and metrics. Serving loads
# `models:/radar-renewal@champion`.

# %%
model_versions(settings, ["radar-renewal"])
