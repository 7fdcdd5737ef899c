"""Opening the model registry and a registered version, with MLflow's failures turned into
one short error that names what is broken and how to repair it.

Shared by the training commands (train, promote, models) and by serving (score, serve, the
running service's champion reload): a tracking store that is not a database (an `mlflow.db`
overwritten with other bytes), or a version whose model artifacts are gone (its folder
deleted), must give a message and exit 1, not a traceback of MLflow's internals.

- `open_registry(settings)`: the client, after one cheap query that proves the store reads.
- `registry_errors(settings)`: a context manager translating a broken store met later.
- `load_version(settings, name, version, role=...)`: the `RadarModel` of one version; missing
  or unreadable artifacts become `RegistryBroken` naming the version and the repair
  (re-register with `radar train`, or roll back with `radar promote TARGET --to VERSION`).

`RegistryBroken` is a `TrackingUnavailable`, so every command that already reports an
unreachable tracking server reports a damaged registry the same way (exit 1, one message).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from radar.settings import TrainingSettings
from training.track import TrackingUnavailable, configure, tracking_uri

if TYPE_CHECKING:
    from training.model import RadarModel


class RegistryBroken(TrackingUnavailable):
    """The registry's store or a version's artifacts cannot be read; the message names
    which and how to repair it."""


def target_of(model_name: str) -> str:
    """The `radar` target argument of a registered model: radar-renewal -> renewal,
    radar-next-renewal -> next_renewal, radar-NAME -> NAME."""
    from training.outcome import TARGETS

    for name, spec in TARGETS.items():
        if spec.model_name == model_name:
            return name
    return model_name.removeprefix("radar-")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def store_broken(settings: TrainingSettings, exc: BaseException) -> RegistryBroken:
    """The error for a tracking store MLflow cannot read (`exc` says why)."""
    uri = tracking_uri(settings)
    return RegistryBroken(
        f"the MLflow registry at {uri} cannot be read ({_first_line(exc)}): restore that store from a backup, "
        "or move it aside and train and promote again (`radar train --target all --promote`); "
        "training.tracking_uri chooses the store"
    )


def _is_store_failure(exc: BaseException) -> bool:
    """A failure of the database behind the store (not a missing model or alias)."""
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(exc, SQLAlchemyError):
        return True
    if isinstance(exc, MlflowException):
        text = str(exc).lower()
        return exc.error_code in ("INTERNAL_ERROR", "BAD_REQUEST") and any(
            w in text for w in ("database", "schema", "sqlite", "migrat")
        )
    return False


@contextlib.contextmanager
def registry_errors(settings: TrainingSettings) -> Iterator[None]:
    """Calls on the registry inside: a broken store becomes `RegistryBroken`."""
    try:
        yield
    except RegistryBroken:
        raise
    except Exception as exc:
        if _is_store_failure(exc):
            raise store_broken(settings, exc) from exc
        raise


def open_registry(settings: TrainingSettings) -> MlflowClient:
    """The registry's client once one cheap query has read the store (`RegistryBroken` if not)."""
    with registry_errors(settings):
        client = configure(settings)
        client.search_registered_models(max_results=1)
    return client


def repair_hint(model_name: str, version: str | None = None) -> str:
    """How to get a served version back: re-register, or point the champion at another version."""
    from training.outcome import TARGETS

    target = target_of(model_name)
    train = f"--target {target}" if target in TARGETS else f"--snapshots FILE --label COL --name {target}"
    return (
        f"re-register it (`radar train {train} --promote`) or roll back to a version that loads "
        f"(`radar promote {target} --to VERSION`; `radar models {target}` lists them)"
    )


def load_version(settings: TrainingSettings, model_name: str, version: str, role: str = "") -> RadarModel:
    """The `RadarModel` of `model_name` version `version` (`role`, e.g. "champion", only
    names it in the message). Unreadable artifacts or store -> `RegistryBroken`."""
    from training.pyfunc import load_radar_model

    label = f"{model_name} v{version}" + (f" (the {role})" if role else "")
    with registry_errors(settings):
        configure(settings)
        try:
            return load_radar_model(f"models:/{model_name}/{version}")
        except RegistryBroken:
            raise
        except Exception as exc:
            if _is_store_failure(exc):
                raise
            raise RegistryBroken(
                f"the model files of {label} cannot be read ({_first_line(exc)}): their artifact folder was moved "
                f"or deleted, or training.artifact_location changed; {repair_hint(model_name, version)}"
            ) from exc
