"""The walkthrough notebook runs top to bottom on a small generated workspace."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import jupytext
import pytest
from mlflow import MlflowClient
from nbclient import NotebookClient

from features.build import build_features
from features.ingest import ingest_workspace
from features.sampledata import generate_workspace
from radar.settings import load_settings

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "walkthrough.py"
FAST = """[training]
bootstrap_samples = 30
backtest_folds = 1
register_min_test_positives = 1
[training.lightgbm]
n_estimators = 80
"""


@pytest.mark.slow
def test_the_walkthrough_runs_on_a_sample_workspace(tmp_path, empty_mlflow_db, monkeypatch):
    # given: a small sample workspace built as `make demo` and `radar build-features` would
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith(("RADAR_", "MLFLOW_"))]:
        monkeypatch.delenv(name)
    (tmp_path / "radar.toml").write_text(FAST)
    generate_workspace(tmp_path / "workspace", accounts=200, years=2, seed=11)
    settings = load_settings()
    ingest_workspace(tmp_path / "workspace", settings)
    build_features(settings)
    (tmp_path / "mlruns").mkdir()
    shutil.copy(empty_mlflow_db, tmp_path / "mlruns" / "mlflow.db")

    # when: the paired notebook is executed in a fresh kernel from the workspace folder
    notebook = jupytext.read(NOTEBOOK)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()

    # then: it trained, logged and registered a renewal model, in a temporary store
    outputs = "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for o in cell.outputs
    )
    assert "TrackedRun(experiment='radar-renewal'" in outputs and "run: renewal " in outputs
    assert "image/png" in {
        k for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs for k in o.get("data", {})
    }
    (used,) = re.findall(r"MLflow store: (sqlite:///\S+)", outputs)
    assert "radar-notebook-" in used and str(tmp_path) not in used
    client = MlflowClient(tracking_uri=used, registry_uri=used)
    assert client.get_model_version_by_alias("radar-renewal", "challenger")
    temporary = Path(used.removeprefix("sqlite:///")).parent
    assert any((temporary / "artifacts" / "radar-renewal").rglob("shap_summary.png"))
    # and never in the workspace's real registry
    real = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    assert not MlflowClient(tracking_uri=real, registry_uri=real).search_registered_models()
    shutil.rmtree(temporary, ignore_errors=True)


def test_the_notebook_is_stored_without_outputs_and_defines_nothing():
    text = NOTEBOOK.read_text()
    notebook = jupytext.reads(text, fmt="py:percent")
    code = [c.source for c in notebook.cells if c.cell_type == "code"]
    assert code and not any(c.outputs for c in notebook.cells if c.cell_type == "code")
    assert not any(line.lstrip().startswith(("def ", "class ")) for c in code for line in c.splitlines())
