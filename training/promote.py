"""Promotion: the `champion` alias moves only to a challenger that is better on the same
rows with a stated probability; rollback moves it back by hand.

Both versions are scored on one test set — the newer of the two runs' held-out rows, so
neither model has trained on them. The version whose test set it is contributes the
probabilities it was evaluated with; the other version is loaded and re-scored. Tables
without a time column are tested out-of-fold, and the served model saw most rows: the
same table compares both versions' out-of-fold predictions, a different one only the
rows the champion never saw (by id).

The rule is a paired bootstrap over accounts (`training.evaluate.paired_bootstrap`):
`promotion_bootstrap_samples` resamples (seeded by `seed`) draw the test accounts with
replacement, all of an account's rows together, and score BOTH versions on each
resample. The challenger is promoted when its `promotion_metric` beats the champion's
(by more than `promotion_margin`, default 0) in at least `promotion_min_probability`
(default 0.9) of the resamples. A single difference of figures is not enough: on a few
hundred accounts a PR-AUC moves by ±0.05 with which accounts happen to be in the test
period, and the comparison then rests on noise. The first version of a model becomes
champion. `force` promotes regardless and says so.

`roll_back(name, version)` (`radar promote TARGET --to VERSION`) points `champion` at an
earlier version after checking that its model loads. Every move of `champion` points the
`previous_champion` alias (and the registered model's `radar.previous_champion` tag) at
the version it replaced, so a rollback is one command.

Every decision is recorded: tags on both versions, metrics and tags on the challenger's
training run (`promotion.probability`, `promotion.gain`, `promotion.gain_ci_low/high`),
a `promotion` run in the model's experiment (with `promotion.json`), and the registered
model's `radar.last_promotion` tag.

Version tags: the challenger gets `promotion.decision` (promoted, refused, forced,
rolled back), `promotion.metric`, `.challenger_value`, `.champion_value`, `.gain`,
`.probability`, `.gain_ci_low`, `.gain_ci_high`, `.min_probability`, `.samples`,
`.margin`, `.compared_with`, `.forced`, `.reason`, `.test_version`, `.test_rows`, `.at`,
`.by`; the champion it was compared with gets `promotion.challenged_by.v<N>` ("kept
against v<N> ..." or "replaced by v<N> ...").
"""

from __future__ import annotations

import getpass
import json
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from radar.settings import Settings, TrainingSettings
from training.evaluate import HIGHER_IS_BETTER, METRICS, PairedComparison, metrics, paired_bootstrap
from training.registry_access import RegistryBroken, load_version, open_registry, registry_errors, repair_hint
from training.track import (
    CHALLENGER,
    CHAMPION,
    TAG_DIGEST,
    TAG_ID,
    TAG_LABEL,
    TAG_TIME,
    TAG_WEIGHT,
    TEST_PREDICTIONS,
    TEST_SET,
    configure,
)

PREVIOUS_CHAMPION = "previous_champion"  # alias of the version the last move of `champion` replaced
TAG_PREVIOUS = "radar.previous_champion"


class PromotionError(ValueError):
    """Promotion cannot be decided (no such model, no challenger, unknown metric or version)."""


@dataclass(frozen=True)
class PromotionDecision:
    """What was decided, on which figures. `champion` is the champion before the decision.
    `probability`: the share of paired bootstrap resamples where the challenger was better;
    `gain_low`/`gain_high`: the 95% interval of its gain (positive = better)."""

    model_name: str
    challenger: str
    champion: str | None
    metric: str
    challenger_value: float | None
    champion_value: float | None
    margin: float
    higher_is_better: bool
    promoted: bool
    forced: bool = False
    rollback: bool = False
    reason: str = ""
    test_version: str | None = None  # whose test rows both were scored on
    test_rows: int = 0
    test_accounts: int = 0
    probability: float | None = None
    gain_low: float | None = None
    gain_high: float | None = None
    min_probability: float = 0.9
    samples: int = 0
    decided_at: str = ""
    decided_by: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        if self.champion == self.challenger:
            return "unchanged"
        if self.rollback:
            return "rolled back"
        if self.forced:
            return "forced"
        return "promoted" if self.promoted else "refused"

    @property
    def gain(self) -> float | None:
        if not (_known(self.challenger_value) and _known(self.champion_value)):
            return None
        diff = self.challenger_value - self.champion_value
        return diff if self.higher_is_better else -diff

    @property
    def message(self) -> str:
        name, c = self.model_name, self.challenger
        if self.outcome == "unchanged":
            return f"{name}: v{c} is already the champion; nothing to do."
        if self.rollback:
            before = f"v{self.champion}" if self.champion else "no champion"
            return (
                f"{name}: rolled back: v{c} is champion again, replacing {before} "
                f"({PREVIOUS_CHAMPION} = {before}; reason: {self.reason})."
            )
        if self.champion is None:
            figure = (
                f" ({self.metric} {self.challenger_value:.4f} on its test rows)"
                if _known(self.challenger_value)
                else ""
            )
            return f"{name}: no champion yet, so v{c}{figure} becomes champion."
        if self.gain is not None and _known(self.probability):
            over = f" by more than {self.margin:g}" if self.margin else ""
            figures = (
                f"challenger v{c} {self.metric} {self.challenger_value:.4f} vs champion v{self.champion} "
                f"{self.champion_value:.4f} on the same {self.test_rows:,} test rows of {self.test_accounts:,} "
                f"accounts (v{self.test_version}'s): better{over} in {self.probability:.0%} of {self.samples:,} "
                f"paired bootstrap resamples of accounts (gain {self.gain:+.4f}, 95% interval "
                f"[{self.gain_low:+.4f}, {self.gain_high:+.4f}]); promotion needs {self.min_probability:.0%}"
            )
        else:
            figures = f"challenger v{c} vs champion v{self.champion}: {self.reason}"
        if self.forced:
            return f"{name}: {figures}. FORCED: v{c} is now champion (reason: {self.reason})."
        if self.promoted:
            return f"{name}: {figures}: promoted, v{c} is now champion."
        return f"{name}: {figures}: refused, v{self.champion} stays champion."


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        return "unknown"


def _known(value: float | None) -> bool:
    return value is not None and bool(np.isfinite(value))


def _stamp() -> dict[str, str]:
    return {"decided_at": datetime.now(UTC).isoformat(timespec="seconds"), "decided_by": _user()}


def promote(
    model_name: str, settings: Settings, *, version: str | None = None, force: bool = False, reason: str | None = None
) -> PromotionDecision:
    """Decide whether `version` (default: the `challenger` alias) replaces the champion,
    move the alias if so, record the decision and return it. A broken registry (store or
    artifacts) is `RegistryBroken`."""
    with registry_errors(settings.training):
        return _promote(model_name, settings, version=version, force=force, reason=reason)


def _promote(
    model_name: str, settings: Settings, *, version: str | None, force: bool, reason: str | None
) -> PromotionDecision:
    cfg = settings.training
    metric = cfg.promotion_metric
    if metric not in METRICS:
        raise PromotionError(f"unknown promotion_metric '{metric}'; use one of {', '.join(METRICS)}")
    client = open_registry(cfg)
    challenger = _version(client, model_name, version)
    champion = _alias(client, model_name, CHAMPION)
    base = dict(
        model_name=model_name,
        challenger=str(challenger.version),
        metric=metric,
        margin=cfg.promotion_margin,
        higher_is_better=HIGHER_IS_BETTER[metric],
        min_probability=cfg.promotion_min_probability,
        **_stamp(),
    )
    if champion is not None and str(champion.version) == str(challenger.version):
        return PromotionDecision(
            champion=str(champion.version),
            challenger_value=None,
            champion_value=None,
            promoted=False,
            reason="already champion",
            **base,
        )
    if champion is None:
        value, rows = _own_figure(client, challenger, metric, cfg.top_k_accounts)
        decision = PromotionDecision(
            champion=None,
            challenger_value=value,
            champion_value=None,
            promoted=True,
            reason="first version: no champion to beat",
            test_version=str(challenger.version),
            test_rows=rows,
            **base,
        )
    else:
        decision = _compare(client, challenger, champion, base, cfg)
    if force and not decision.promoted:
        decision = replace(
            decision,
            promoted=True,
            forced=True,
            reason=reason or "forced without a stated reason",
            notes=[*decision.notes, f"rule said: {decision.reason}"],
        )
    elif force:
        decision = replace(
            decision,
            notes=[*decision.notes, f"--force was not needed: the rule promotes ({reason or 'no reason given'})"],
        )
    _apply(client, decision)
    _record(client, decision, challenger)
    return decision


def roll_back(model_name: str, version: str, settings: Settings, *, reason: str | None = None) -> PromotionDecision:
    """Point `champion` at `version` (an earlier one, usually), after checking that its
    model loads; `previous_champion` then names the version it replaced. Recorded like a
    promotion (decision "rolled back")."""
    cfg = settings.training
    with registry_errors(cfg):
        client = open_registry(cfg)
        target = _version(client, model_name, version)
        champion = _alias(client, model_name, CHAMPION)
        decision = PromotionDecision(
            model_name=model_name,
            challenger=str(target.version),
            champion=None if champion is None else str(champion.version),
            metric=cfg.promotion_metric,
            challenger_value=None,
            champion_value=None,
            margin=cfg.promotion_margin,
            higher_is_better=HIGHER_IS_BETTER.get(cfg.promotion_metric, True),
            promoted=True,
            rollback=True,
            reason=reason or "rolled back by hand (--to)",
            min_probability=cfg.promotion_min_probability,
            **_stamp(),
        )
        if decision.outcome == "unchanged":
            return replace(decision, promoted=False, rollback=False, reason="already champion")
        load_version(cfg, model_name, str(target.version), "version to roll back to")  # it must load before it serves
        _apply(client, decision)
        _record(client, decision, target)
    return decision


def _missing(exc: MlflowException) -> bool:
    """MLflow's answer for an unknown model, version or alias (not a store that is down)."""
    return exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def _versions(client: MlflowClient, name: str) -> list[str]:
    return sorted((str(v.version) for v in client.search_model_versions(f"name='{name}'")), key=int)


def _version(client: MlflowClient, name: str, version: str | None) -> ModelVersion:
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if not _missing(exc):
            raise
        raise PromotionError(f"no registered model '{name}': train one first (radar train)") from exc
    if version is not None:
        wanted = str(version).strip().lower().removeprefix("v")
        known = _versions(client, name)
        if wanted not in known:
            raise PromotionError(
                f"{name} has no version {version}; its versions are {', '.join(known) or 'none'} "
                f"(`radar models {name}` lists them with their figures)"
            )
        return client.get_model_version(name, wanted)
    found = _alias(client, name, CHALLENGER)
    if found is None:
        raise PromotionError(f"{name} has no '{CHALLENGER}' version: train one (radar train) or name a --version")
    return found


def _alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if not _missing(exc):
            raise
        return None


@dataclass
class _TestSet:
    """A version's held-out rows (features, label, keys) and the probabilities it was
    evaluated with on them (out-of-sample: test period or out-of-fold)."""

    version: ModelVersion
    rows: pd.DataFrame
    own_p: np.ndarray
    label: str
    id_col: str
    weight_col: str | None
    latest: object  # the latest time value; None without a time column
    digest: str

    @property
    def y(self) -> np.ndarray:
        return self.rows[self.label].to_numpy(int)

    @property
    def weight(self) -> np.ndarray | None:
        if not self.weight_col or self.weight_col not in self.rows.columns:
            return None
        return pd.to_numeric(self.rows[self.weight_col], errors="coerce").fillna(0.0).to_numpy(float)

    @property
    def ids(self) -> np.ndarray:
        return self.rows[self.id_col].to_numpy()

    def only(self, mask: np.ndarray) -> _TestSet:
        return replace(self, rows=self.rows[mask].reset_index(drop=True), own_p=self.own_p[mask])


def _test_set(client: MlflowClient, mv: ModelVersion) -> _TestSet:
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rows = pd.read_parquet(client.download_artifacts(mv.run_id, TEST_SET, tmp))
            preds = pd.read_parquet(client.download_artifacts(mv.run_id, TEST_PREDICTIONS, tmp))
    except (MlflowException, OSError, ValueError) as exc:
        raise RegistryBroken(
            f"the test rows of {mv.name} v{mv.version} (run {mv.run_id}) cannot be read "
            f"({str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__}): its run's "
            f"artifact folder was moved or deleted; {repair_hint(mv.name)}"
        ) from exc
    tags = mv.tags
    time_col = tags.get(TAG_TIME) or None
    latest = rows[time_col].max() if time_col and time_col in rows.columns and len(rows) else None
    return _TestSet(
        mv,
        rows,
        preds["p_model"].to_numpy(float),
        tags[TAG_LABEL],
        tags[TAG_ID],
        tags.get(TAG_WEIGHT) or None,
        latest,
        tags.get(TAG_DIGEST, ""),
    )


def _figure(ts: _TestSet, p: np.ndarray, metric: str, k: int) -> float:
    return metrics(ts.y, p, ts.weight, k)[metric]


def _own_figure(client: MlflowClient, mv: ModelVersion, metric: str, k: int) -> tuple[float, int]:
    ts = _test_set(client, mv)
    return _figure(ts, ts.own_p, metric, k), len(ts.rows)


def _newer(a: _TestSet, b: _TestSet) -> _TestSet:
    """The test set from later data (`a`, the challenger's, unless `b`'s reaches further)."""
    try:
        return b if a.latest is not None and b.latest is not None and b.latest > a.latest else a
    except TypeError:  # dates against period numbers: not comparable, keep the challenger's
        return a


def _rescored(mv: ModelVersion, rows: pd.DataFrame, settings: TrainingSettings, role: str) -> np.ndarray:
    return np.asarray(load_version(settings, mv.name, str(mv.version), role).predict_proba(rows), float)


def _common_rows(
    challenger: _TestSet, champion: _TestSet, settings: TrainingSettings
) -> tuple[_TestSet, np.ndarray, np.ndarray, list[str]]:
    """The rows both are judged on, each version's probabilities on them, and notes.

    With a time column: the newer test set; its version's own probabilities, the other
    version re-scored. Without one, "test" means out-of-fold over the whole table and the
    served model saw most rows: on the same table (same digest) both out-of-fold
    predictions are compared; on different tables only the challenger's rows the
    champion never saw (by id) are fair.
    """
    if challenger.latest is not None or champion.latest is not None:
        ref = _newer(challenger, champion)
        p_ch = challenger.own_p if ref is challenger else _rescored(challenger.version, ref.rows, settings, CHALLENGER)
        p_cp = champion.own_p if ref is champion else _rescored(champion.version, ref.rows, settings, CHAMPION)
        return ref, p_ch, p_cp, []
    if challenger.digest and challenger.digest == champion.digest:
        by_id = pd.Series(champion.own_p, index=champion.ids)
        p_cp = by_id.reindex(challenger.ids).to_numpy(float)
        return (
            challenger,
            challenger.own_p,
            p_cp,
            ["no time column, same table: out-of-fold predictions of both versions on the same rows"],
        )
    unseen = ~challenger.rows[challenger.id_col].isin(champion.rows[champion.id_col]).to_numpy()
    ref = challenger.only(unseen)
    if not len(ref.rows):
        raise _Incomparable(
            f"no time column and every row of v{challenger.version.version} was in "
            f"v{champion.version.version}'s table: no rows the champion has not trained on"
        )
    return (
        ref,
        ref.own_p,
        _rescored(champion.version, ref.rows, settings, CHAMPION),
        [f"no time column: compared on the {len(ref.rows):,} rows v{champion.version.version} never saw"],
    )


class _Incomparable(Exception):
    """The two versions cannot be judged on common unseen rows."""


def compare(ref_y, p_ch, p_cp, cfg: TrainingSettings, *, weight=None, groups=None) -> PairedComparison:
    """The paired bootstrap of the promotion rule with the settings' metric, resamples,
    seed and margin."""
    return paired_bootstrap(
        ref_y,
        p_ch,
        p_cp,
        cfg.promotion_metric,
        weight=weight,
        groups=groups,
        k=cfg.top_k_accounts,
        samples=cfg.promotion_bootstrap_samples,
        seed=cfg.seed,
        margin=cfg.promotion_margin,
    )


def _compare(
    client: MlflowClient, challenger: ModelVersion, champion: ModelVersion, base: dict, cfg: TrainingSettings
) -> PromotionDecision:
    kept = dict(champion=str(champion.version), **base)
    try:
        ref, p_ch, p_cp, notes = _common_rows(_test_set(client, challenger), _test_set(client, champion), cfg)
    except (_Incomparable, ValueError, KeyError) as exc:  # e.g. a version lacks a feature of the other's rows
        return PromotionDecision(
            challenger_value=None,
            champion_value=None,
            promoted=False,
            reason=f"cannot compare on common test rows: {exc}",
            **kept,
        )
    c = compare(ref.y, p_ch, p_cp, cfg, weight=ref.weight, groups=ref.ids)
    if not (_known(c.challenger) and _known(c.champion)) or not c.samples:
        promoted, why = False, f"{c.metric} is undefined on these rows (one class only)"
    else:
        promoted = c.probability >= cfg.promotion_min_probability
        why = (
            f"better in {c.probability:.1%} of {c.samples} paired resamples "
            f"{'>=' if promoted else '<'} {cfg.promotion_min_probability:.0%}"
        )
    return PromotionDecision(
        challenger_value=c.challenger,
        champion_value=c.champion,
        promoted=promoted,
        reason=why,
        test_version=str(ref.version.version),
        test_rows=len(ref.rows),
        test_accounts=c.units,
        probability=c.probability if c.samples else None,
        gain_low=c.gain_low if c.samples else None,
        gain_high=c.gain_high if c.samples else None,
        samples=c.samples,
        notes=notes,
        **kept,
    )


def _apply(client: MlflowClient, d: PromotionDecision) -> None:
    if not d.promoted:
        return
    client.set_registered_model_alias(d.model_name, CHAMPION, d.challenger)
    if d.champion is not None and d.champion != d.challenger:
        client.set_registered_model_alias(d.model_name, PREVIOUS_CHAMPION, d.champion)
        client.set_registered_model_tag(d.model_name, TAG_PREVIOUS, d.champion)
    current = _alias(client, d.model_name, CHALLENGER)
    if current is not None and str(current.version) == d.challenger:
        client.delete_registered_model_alias(d.model_name, CHALLENGER)


def _fmt(v: float | None) -> str:
    return "" if v is None or not np.isfinite(v) else f"{v:.6g}"


def _record(client: MlflowClient, d: PromotionDecision, challenger: ModelVersion) -> None:
    """Tags on both versions, tags and metrics on the challenger's training run, a
    promotion run with the decision as JSON, and the registered model's last decision."""
    summary = {
        "decision": d.outcome,
        "metric": d.metric,
        "challenger_value": _fmt(d.challenger_value),
        "champion_value": _fmt(d.champion_value),
        "gain": _fmt(d.gain),
        "probability": _fmt(d.probability),
        "gain_ci_low": _fmt(d.gain_low),
        "gain_ci_high": _fmt(d.gain_high),
        "min_probability": f"{d.min_probability:g}",
        "samples": str(d.samples),
        "margin": f"{d.margin:g}",
        "compared_with": d.champion or "none",
        "forced": str(d.forced).lower(),
        "reason": d.reason,
        "test_version": d.test_version or "",
        "test_rows": str(d.test_rows),
        "at": d.decided_at,
        "by": d.decided_by,
    }
    for key, value in summary.items():
        client.set_model_version_tag(d.model_name, d.challenger, f"promotion.{key}", value[:5000])
    if d.champion is not None:
        verdict = f"replaced by v{d.challenger}" if d.promoted else f"kept against v{d.challenger}"
        figures = (
            f"{d.metric} {_fmt(d.champion_value)} vs {_fmt(d.challenger_value)}, P(better) {_fmt(d.probability)}, "
            if d.probability is not None
            else ""
        )
        client.set_model_version_tag(
            d.model_name,
            d.champion,
            f"promotion.challenged_by.v{d.challenger}",
            f"{verdict} ({figures}{d.decided_at})",
        )
    figures = {
        k: float(v)
        for k, v in (
            ("challenger_value", d.challenger_value),
            ("champion_value", d.champion_value),
            ("gain", d.gain),
            ("probability", d.probability),
            ("gain_ci_low", d.gain_low),
            ("gain_ci_high", d.gain_high),
        )
        if _known(v)
    }
    now = int(time.time() * 1000)
    try:  # on the challenger's own training run too, where its figures are read
        client.log_batch(
            challenger.run_id,
            metrics=[Metric(f"promotion.{k}", v, now, 0) for k, v in figures.items()],
            tags=[RunTag(f"promotion.{k}", summary[k][:5000]) for k in ("decision", "compared_with", "reason", "at")],
        )
    except MlflowException:  # a deleted run: the version tags and the promotion run still hold it
        pass
    payload = {**asdict(d), "gain": d.gain, "outcome": d.outcome, "message": d.message}
    experiment_id = client.get_run(challenger.run_id).info.experiment_id
    run = client.create_run(
        experiment_id,
        run_name=f"promote {d.model_name.removeprefix('radar-')} v{d.challenger}: {d.outcome}",
        tags={"radar.kind": "promotion", "radar.model": d.model_name, "radar.decision": d.outcome},
    )
    params = {
        "challenger_version": d.challenger,
        "champion_version": d.champion or "none",
        "metric": d.metric,
        "margin": f"{d.margin:g}",
        "min_probability": f"{d.min_probability:g}",
        "bootstrap_samples": str(d.samples),
        "forced": str(d.forced).lower(),
        "rollback": str(d.rollback).lower(),
        "reason": d.reason[:6000],
        "test_version": d.test_version or "",
    }
    client.log_batch(
        run.info.run_id,
        params=[Param(k, v) for k, v in params.items()],
        metrics=[Metric(k, v, now, 0) for k, v in figures.items()],
    )
    client.log_dict(run.info.run_id, payload, "promotion.json")
    client.set_terminated(run.info.run_id)
    client.set_registered_model_tag(d.model_name, "radar.last_promotion", json.dumps(summary)[:5000])


def promotion_history(model_name: str, settings: Settings) -> list[dict]:
    """Every recorded decision for `model_name`, newest first (from the promotion runs)."""
    client = configure(settings.training)
    try:
        mv = client.search_model_versions(f"name='{model_name}'", max_results=1)
    except MlflowException:
        return []
    if not mv:
        return []
    experiment_id = client.get_run(mv[0].run_id).info.experiment_id
    runs = client.search_runs(
        [experiment_id],
        f"tags.`radar.kind` = 'promotion' and tags.`radar.model` = '{model_name}'",
        order_by=["attributes.start_time DESC"],
    )
    out = []
    for run in runs:
        with tempfile.TemporaryDirectory() as tmp:
            out.append(json.loads(Path(client.download_artifacts(run.info.run_id, "promotion.json", tmp)).read_text()))
    return out
