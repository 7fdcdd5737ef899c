"""What `radar models` shows: every registered version, its aliases and its test figures.

Read from the registry alone (version tags written by `training.track` and
`training.promote`), so it works against any tracking store without downloading models.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
from mlflow import MlflowClient

from radar.settings import Settings
from training.track import TAG_BASE_RATE, TAG_TARGET, TAG_TEST_RANGE, configure

KEY_METRICS = ("pr_auc", "roc_auc", "brier", "ece", "lift_top10")
COLUMNS = ["model", "version", "aliases", "created", "target", "test", *KEY_METRICS, "base_rate", "promotion", "run_id"]


def model_versions(settings: Settings, names: list[str] | None = None) -> pd.DataFrame:
    """One row per registered version (newest first within each model) of `names`
    (default: every registered model), with its aliases, key test metrics and base rate."""
    client = configure(settings.training)
    models = sorted(names if names is not None else [m.name for m in _all_models(client)])
    rows = []
    for name in models:
        aliases: dict[str, list[str]] = {}
        for alias, version in client.get_registered_model(name).aliases.items():
            aliases.setdefault(str(version), []).append(alias)
        for mv in sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: -int(v.version)):
            tags = mv.tags
            row = {
                "model": name,
                "version": int(mv.version),
                "aliases": ", ".join(sorted(aliases.get(str(mv.version), []))),
                "created": datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).strftime("%Y-%m-%d %H:%M"),
                "target": tags.get(TAG_TARGET, ""),
                "test": tags.get(TAG_TEST_RANGE, ""),
                "promotion": tags.get("promotion.decision", ""),
                "run_id": mv.run_id,
            }
            for m in KEY_METRICS:
                value = tags.get(f"test.model.{m}")
                row[m] = float(value) if value not in (None, "") else float("nan")
            rate = tags.get(TAG_BASE_RATE)  # absent for versions trained before it was recorded
            row["base_rate"] = float(rate) if rate not in (None, "") else float("nan")
            rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def _all_models(client: MlflowClient) -> list:
    out, token = [], None
    while True:
        page = client.search_registered_models(max_results=100, page_token=token)
        out.extend(page)
        token = page.token
        if not token:
            return out
