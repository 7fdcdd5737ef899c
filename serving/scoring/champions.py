"""Which models are served: the `champion` versions in the MLflow registry.

The 90-day churn model (`radar-renewal`) and the upsell model are required; the
next-renewal model (`radar-next-renewal`) is served when it has a champion (an older
registry without it still scores, without the renewal likelihood at the next renewal).

Serving never picks a model by itself: it loads whatever `radar promote` made champion,
by alias, and reports the names and versions it loaded with every score. No champion
(nothing trained or promoted yet, or the wrong tracking store) is a `NoChampion` error
that says which model is missing and what to run.
"""

from __future__ import annotations

from radar.settings import Settings
from serving.scoring.score import ScoringModels, ServedModel
from training.outcome import TARGETS
from training.track import CHAMPION, check_tracking, configure, tracking_uri


class NoChampion(RuntimeError):
    """A served target has no champion version in the registry."""


REQUIRED = ("renewal", "upsell")
OPTIONAL = ("next_renewal",)


def champion_versions(settings: Settings) -> dict[str, str]:
    """{target: champion version} for renewal, upsell (required; `NoChampion` names any
    missing) and next_renewal (when it has one)."""
    from mlflow.exceptions import MlflowException

    check_tracking(settings.training)
    client = configure(settings.training)
    found, missing = {}, []
    for target in REQUIRED + tuple(t for t in OPTIONAL if t in TARGETS):
        name = TARGETS[target].model_name
        try:
            found[target] = str(client.get_model_version_by_alias(name, CHAMPION).version)
        except MlflowException as exc:
            if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise
            if target in REQUIRED:
                missing.append(name)
    if missing:
        raise NoChampion(
            f"no champion version of {' and '.join(missing)} in the MLflow registry at "
            f"{tracking_uri(settings.training)}: run `radar train --target all --promote` "
            "(or `radar promote TARGET`), or point training.tracking_uri at the registry that has them"
        )
    return found


def load_champions(settings: Settings) -> ScoringModels:
    """The champion renewal and upsell models, loaded once (at service start or batch run)."""
    from training.pyfunc import load_radar_model

    versions = champion_versions(settings)
    served = {}
    for target, version in versions.items():
        name = TARGETS[target].model_name
        # by version rather than alias: a promotion during loading cannot mix versions
        served[target] = ServedModel(load_radar_model(f"models:/{name}/{version}"), name, version)
    return ScoringModels(served["renewal"], served["upsell"], served.get("next_renewal"))
