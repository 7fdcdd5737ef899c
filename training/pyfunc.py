"""The registered model as an MLflow pyfunc: snapshot rows in, calibrated probabilities out.

The pyfunc wraps the saved `RadarModel` directory (an MLflow artifact) rather than pickling
the model, so the registry holds exactly what `RadarModel.save` wrote; MLflow rebuilds
the wrapper from code (`training/pyfunc_model.py`, MLflow's models-from-code), so loading
a version needs this project importable and unpickles nothing. Its signature is
the input example's columns, every one required: a scoring frame that lacks a feature the
model was trained on fails at the door instead of being scored on NaNs (train/serve skew).
Values may still be missing. Column types are the training table's; serving builds its
frames with the same feature code, so a count stays an integer on both sides.

The base rate (the positive rate of the calibration period: the typical risk that tiers
compare with) travels in the saved model's metadata: `base_rate(model)` reads it, and
the wrapper exposes it as `base_rate`. The version's MLmodel metadata (`radar_base_rate`)
and tag (`radar.base_rate`) hold it too, for readers that do not load the model.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature, infer_signature
from mlflow.pyfunc import PythonModel
from mlflow.types.schema import ColSpec, Schema

from training.model import RadarModel

ARTIFACT_KEY = "radar_model"  # the saved RadarModel directory among the version's artifacts
OUTPUT_COLUMN = "probability"
ENTRY_POINT = Path(__file__).with_name("pyfunc_model.py")


class RadarPyfunc(PythonModel):
    """Loads the saved model once, in `load_context`; `predict` returns a `probability` column."""

    def __init__(self) -> None:
        self.radar_model: RadarModel | None = None

    def load_context(self, context) -> None:
        self.radar_model = RadarModel.load(Path(context.artifacts[ARTIFACT_KEY]))

    @property
    def base_rate(self) -> float | None:
        return None if self.radar_model is None else base_rate(self.radar_model)

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return pd.DataFrame({OUTPUT_COLUMN: self.radar_model.predict_proba(model_input)}, index=model_input.index)


def signature_for(example: pd.DataFrame, model: RadarModel) -> ModelSignature:
    """Input schema from `example` (every column required, values may be missing);
    output schema from the model's answer on it."""
    output = pd.DataFrame({OUTPUT_COLUMN: model.predict_proba(example)})
    with warnings.catch_warnings():
        # MLflow hints that integer columns cannot hold missing values: deliberate, see above.
        warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
        inferred = infer_signature(example, output)
    inputs = Schema([ColSpec(c.type, c.name, required=True) for c in inferred.inputs.inputs])
    return ModelSignature(inputs=inputs, outputs=inferred.outputs)


def load_radar_model(model_uri: str) -> RadarModel:
    """The underlying model (with `contributions`, `raw_margin`, ...) behind a pyfunc URI,
    e.g. ``models:/radar-renewal@champion``."""
    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model().radar_model


def base_rate(model: RadarModel) -> float | None:
    """The positive rate of the model's calibration period (its training rows when it had
    none), recorded when it was trained; None for a model trained before it was recorded."""
    value = model.metadata.get("base_rate")
    return None if value is None else float(value)
