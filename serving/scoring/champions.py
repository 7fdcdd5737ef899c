"""Which models are served: the `champion` versions in the MLflow registry, and the running
service's switch to a newly promoted set.

The 90-day churn model (`radar-renewal`) and the upsell model are required; the
next-renewal model (`radar-next-renewal`) is served when it has a champion (an older
registry without it still scores, without the renewal likelihood at the next renewal).

Serving never picks a model by itself: it loads whatever `radar promote` made champion,
by alias, and reports the names and versions it loaded with every score. No champion
(nothing trained or promoted yet, or the wrong tracking store) is a `NoChampion` error
that says which model is missing and what to run. A damaged registry (a store that is not
a database, a champion whose files are gone) is `RegistryBroken` (the training package's
`registry_access`, shared with `radar train/promote/models`), naming what is broken and
how to repair it.

`LiveChampions` holds the set a running service serves behind one reference: a poll finds
a new champion, loads the whole set (every model, its explainers and whatever the service
prepares with it), and only then replaces the reference in one assignment. A request reads
the reference once, so it never mixes versions, and the read costs no more than an
attribute lookup. A new champion that cannot be loaded leaves the current set serving and
is logged once, not at every poll.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from radar.settings import Settings
from serving.scoring.score import ScoringModels, ServedModel, lineage_words
from training.outcome import TARGETS
from training.registry_access import load_version, open_registry, registry_errors
from training.track import CHAMPION, TrackingUnavailable, check_tracking, tracking_uri

log = logging.getLogger("radar.champions")


class NoChampion(RuntimeError):
    """A served target has no champion version in the registry."""


REQUIRED = ("renewal", "upsell")
OPTIONAL = ("next_renewal",)


def champion_versions(settings: Settings) -> dict[str, str]:
    """{target: champion version} for renewal, upsell (required; `NoChampion` names any
    missing) and next_renewal (when it has one). A store that cannot be read is
    `RegistryBroken`."""
    from mlflow.exceptions import MlflowException

    check_tracking(settings.training)
    client = open_registry(settings.training)
    found, missing = {}, []
    with registry_errors(settings.training):
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


def load_champions(settings: Settings, versions: dict[str, str] | None = None) -> ScoringModels:
    """The champion models (`versions`, default: the champions now), each loaded completely;
    a version whose files cannot be read is `RegistryBroken` naming it and the repair."""
    versions = champion_versions(settings) if versions is None else versions
    served = {}
    for target, version in versions.items():
        name = TARGETS[target].model_name
        # by version rather than alias: a promotion during loading cannot mix versions
        model = load_version(settings.training, name, version, role="champion")
        served[target] = ServedModel(model, name, version)
    return ScoringModels(served["renewal"], served["upsell"], served.get("next_renewal"))


def versions_of(models: ScoringModels) -> dict[str, str]:
    """{target: version} of a served set, comparable with `champion_versions`."""
    return {t: str(getattr(models, t).version) for t in models.targets}


def warm(models: ScoringModels, settings: Settings) -> None:
    """Build what the first request would otherwise build: explainers, feature registry,
    base rates and lineage (all cached on `models`)."""
    for target in models.targets:
        models.explainer(target)
    models.registry(settings)
    models.base_rates  # noqa: B018 (a cached property: computed now, not in a request)
    models.lineage  # noqa: B018


class LiveChampions:
    """The champion set a running service serves, swapped whole when a new one is promoted.

    Read `models` once per request and use that object for the whole response. `refresh`
    (called every `serving.champion_poll_seconds` by `start`) looks up the champion
    versions; when they differ from the served ones it loads the new set, warms it, runs
    `prepare(models)` (e.g. scoring the portfolio with it) and then assigns `models`.
    """

    def __init__(
        self,
        settings: Settings,
        models: ScoringModels,
        prepare: Callable[[ScoringModels], object] | None = None,
    ):
        self.settings = settings
        self.models = models
        self._prepare = prepare
        self._problem: str | None = None  # the problem last warned about (warned once)
        self._refreshing = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> bool:
        """Switch to the registry's champions if they changed; True when it switched. A
        registry or new champion that cannot be read keeps the current set (one warning)."""
        with self._refreshing:
            current = self.models
            try:
                versions = champion_versions(self.settings)
                if versions == versions_of(current):
                    self._recovered(current)
                    return False
                models = load_champions(self.settings, versions)
                warm(models, self.settings)
                if self._prepare is not None:
                    self._prepare(models)
            except (NoChampion, TrackingUnavailable) as exc:  # RegistryBroken is a TrackingUnavailable
                self._warn(current, str(exc))
                return False
            except Exception as exc:  # the poll must outlive anything a registry or model throws
                self._warn(current, f"unexpected {type(exc).__name__} while loading the new champions: {exc}")
                return False
            self.models = models  # the switch: one reference, read once per request
            self._problem = None
            log.info("switched to %s (was %s)", lineage_words(models.lineage), lineage_words(current.lineage))
            return True

    def _warn(self, current: ScoringModels, problem: str) -> None:
        if problem != self._problem:
            self._problem = problem
            log.warning("still serving %s: %s", lineage_words(current.lineage), problem)

    def _recovered(self, current: ScoringModels) -> None:
        if self._problem is not None:
            self._problem = None
            log.info("the registry reads again; its champions are the served %s", lineage_words(current.lineage))

    def start(self, every_seconds: float) -> None:
        """Poll the registry every `every_seconds` (0: never) on a daemon thread."""
        if every_seconds <= 0 or self._thread is not None:
            return

        def poll() -> None:
            while not self._stop.wait(every_seconds):
                self.refresh()

        self._thread = threading.Thread(target=poll, name="champion-poll", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
