"""The pictures of a run, as PNG files: how well the model ranks (ROC, precision-recall,
cumulative gain and lift), whether its probabilities mean what they say (reliability
curve with counts), and what drives it (SHAP beeswarm, gain importance).

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot, so no global
backend state). The beeswarm is drawn here from LightGBM's exact TreeSHAP contributions
rather than with the shap package: the values are the same, and importing shap costs
several seconds per process (measured 2.5–6.6 s on the 2-core machine, against under a
second to draw 2,000 rows).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from training.evaluate import ECE_BINS, metrics

LABELS = {"p_model": "LightGBM", "p_logistic": "Logistic regression", "p_health_score": "Health score"}
COLOURS = {"p_model": "#1f77b4", "p_logistic": "#ff7f0e", "p_health_score": "#2ca02c"}
SHAP_ROWS = 2000  # rows drawn in the beeswarm (a seeded sample of the test period)
TOP_FEATURES = 20


def _figure(*shape: int, size=(7.0, 5.0)) -> tuple[Figure, object]:
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(*shape) if shape else fig.add_subplot()


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _roc(preds: pd.DataFrame, y: np.ndarray, title: str, path: Path) -> Path:
    fig, ax = _figure()
    for col in (c for c in LABELS if c in preds):
        fpr, tpr, _ = roc_curve(y, preds[col])
        ax.plot(fpr, tpr, color=COLOURS[col], label=f"{LABELS[col]} (AUC {metrics(y, preds[col])['roc_auc']:.3f})")
    ax.plot([0, 1], [0, 1], ls=":", color="grey", label="Random")
    ax.set(xlabel="False-positive rate", ylabel="True-positive rate (recall)", title=title)
    ax.legend(loc="lower right")
    return _save(fig, path)


def _pr(preds: pd.DataFrame, y: np.ndarray, title: str, path: Path) -> Path:
    fig, ax = _figure()
    for col in (c for c in LABELS if c in preds):
        precision, recall, _ = precision_recall_curve(y, preds[col])
        ax.step(
            recall,
            precision,
            where="post",
            color=COLOURS[col],
            label=f"{LABELS[col]} (AP {metrics(y, preds[col])['pr_auc']:.3f})",
        )
    ax.axhline(y.mean(), ls=":", color="grey", label=f"Base rate {y.mean():.1%}")
    ax.set(xlabel="Recall", ylabel="Precision", title=title, xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="upper right")
    return _save(fig, path)


def _calibration(preds: pd.DataFrame, y: np.ndarray, title: str, path: Path) -> Path:
    fig, (ax, hist) = _figure(2, 1, size=(7.0, 6.5))
    fig.subplots_adjust(hspace=0.3)
    top = 0.0
    for col in (c for c in LABELS if c in preds):
        p = preds[col].to_numpy()
        order = np.argsort(p, kind="mergesort")
        bins = np.array_split(order, ECE_BINS)
        mean_p = [p[b].mean() for b in bins if len(b)]
        freq = [y[b].mean() for b in bins if len(b)]
        top = max(top, *mean_p, *freq)
        ax.plot(mean_p, freq, "o-", color=COLOURS[col], label=f"{LABELS[col]} (ECE {metrics(y, p)['ece']:.3f})")
        sizes = sorted({len(b) for b in bins})
    lim = min(1.0, top * 1.1 + 0.01)
    ax.plot([0, lim], [0, lim], ls=":", color="grey", label="Perfectly calibrated")
    rows = f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]}–{sizes[-1]}"
    ax.set(
        xlabel=f"Mean predicted probability ({ECE_BINS} equal-count bins of {rows} rows each)",
        ylabel="Observed frequency",
        title=title,
        xlim=(0, lim),
        ylim=(0, lim),
    )
    ax.legend(loc="upper left", fontsize=8)
    hist.hist(preds["p_model"], bins=40, color=COLOURS["p_model"])
    hist.set(xlabel="LightGBM predicted probability", ylabel="Rows")
    return _save(fig, path)


def _gain(preds: pd.DataFrame, y: np.ndarray, title: str, path: Path) -> Path:
    fig, (gain, lift) = _figure(1, 2, size=(11.0, 4.5))
    share = np.arange(1, len(y) + 1) / len(y)
    for col in (c for c in LABELS if c in preds):
        captured = np.cumsum(y[np.argsort(-preds[col].to_numpy(), kind="mergesort")]) / max(y.sum(), 1)
        gain.plot(share, captured, color=COLOURS[col], label=LABELS[col])
        lift.plot(share, captured / share, color=COLOURS[col], label=LABELS[col])
    gain.plot([0, 1], [0, 1], ls=":", color="grey", label="Random")
    lift.axhline(1, ls=":", color="grey")
    gain.set(
        xlabel="Share of accounts contacted (highest score first)",
        ylabel="Share of positives reached",
        title="Cumulative gain",
    )
    lift.set(xlabel="Share of accounts contacted", ylabel="Lift over random", title="Lift", xlim=(0.01, 1))
    gain.legend(loc="lower right")
    fig.suptitle(title)
    return _save(fig, path)


def _beeswarm(contrib: np.ndarray, X: pd.DataFrame, title: str, path: Path, seed: int = 0) -> Path:
    order = np.argsort(-np.abs(contrib).mean(0))[:TOP_FEATURES][::-1]
    fig, ax = _figure(size=(8.0, 0.35 * len(order) + 1.8))
    rng = np.random.default_rng(seed)
    points = None
    for row, j in enumerate(order):
        col = X.iloc[:, j]
        value = col.cat.codes.where(col.cat.codes >= 0).astype(float) if hasattr(col, "cat") else col.astype(float)
        colour = value.rank(pct=True).to_numpy()
        jitter = rng.normal(0, 0.1, len(col)).clip(-0.35, 0.35)
        missing = np.isnan(colour)
        ax.scatter(contrib[missing, j], row + jitter[missing], s=4, color="#bbbbbb", alpha=0.6)
        if (~missing).any():
            points = ax.scatter(
                contrib[~missing, j],
                row + jitter[~missing],
                s=4,
                c=colour[~missing],
                cmap="coolwarm",
                vmin=0,
                vmax=1,
                alpha=0.8,
            )
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(range(len(order)), [X.columns[j] for j in order], fontsize=8)
    ax.set(xlabel="Contribution to the log-odds (SHAP value)", title=title)
    if points is not None:
        bar = fig.colorbar(points, ax=ax, ticks=[0, 1], fraction=0.03)
        bar.set_ticklabels(["low", "high"])
        bar.set_label("Feature value (grey: missing)")
    return _save(fig, path)


def _importance(importance: pd.Series, title: str, path: Path) -> Path:
    top = importance.head(TOP_FEATURES)[::-1]
    fig, ax = _figure(size=(8.0, 0.35 * len(top) + 1.5))
    ax.barh(top.index, top.to_numpy() / max(importance.sum(), 1e-12), color=COLOURS["p_model"])
    ax.tick_params(axis="y", labelsize=8)
    ax.set(xlabel="Share of total split gain", title=title)
    return _save(fig, path)


def make_plots(outcome, frame: pd.DataFrame, out_dir: Path) -> dict[str, Path]:
    """Every plot of a `TrainOutcome` (its test predictions and served model) as PNGs in
    `out_dir`; `frame` holds the test rows (features) in the order of test_predictions."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    preds = outcome.test_predictions
    y = preds[outcome.target.label].to_numpy(int)
    name, period = outcome.target.name, outcome.split.get("test", "")
    what = f"P({outcome.target.positive})"
    title = lambda kind: f"{name}: {kind}\ntest period {period}"
    paths = {
        "roc": _roc(preds, y, title("ROC"), out_dir / "roc.png"),
        "pr": _pr(preds, y, title("precision-recall"), out_dir / "pr.png"),
        "calibration": _calibration(preds, y, title(f"reliability of {what}"), out_dir / "calibration.png"),
        "gain": _gain(preds, y, title("who to call first"), out_dir / "gain.png"),
    }
    sample = frame.sample(min(SHAP_ROWS, len(frame)), random_state=0) if len(frame) else frame
    X = outcome.model.prepare(sample)
    contrib, _ = outcome.model.contributions(sample)
    paths["shap_summary"] = _beeswarm(contrib, X, title("drivers (SHAP)"), out_dir / "shap_summary.png")
    paths["importance"] = _importance(
        outcome.model.importance("gain"), title("feature importance (gain)"), out_dir / "importance.png"
    )
    return paths
