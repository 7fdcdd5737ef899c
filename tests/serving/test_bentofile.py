"""`bentoml build` packages the service: code, data files and the pinned requirements."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXPORT = ["export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project"]


def _uv() -> str | None:
    return os.environ.get("UV") or shutil.which("uv")


def _requirements(text: str) -> list[str]:
    return sorted(line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


def test_the_bento_requirements_match_the_lock_file():
    uv = _uv()
    if uv is None:
        pytest.skip("uv is not on PATH (run the tests with `uv run`)")
    done = subprocess.run([uv, *EXPORT], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    shipped = (ROOT / "requirements.lock.txt").read_text()
    assert _requirements(shipped) == _requirements(done.stdout), (
        "requirements.lock.txt is out of date: run `uv " + " ".join(EXPORT) + " -o requirements.lock.txt`"
    )


@pytest.mark.slow
def test_bentoml_build_packages_the_service_and_its_data_files(tmp_path):
    env = dict(os.environ, BENTOML_HOME=str(tmp_path / "bentoml"), BENTOML_DO_NOT_TRACK="true")
    uv = _uv()  # bentoml build runs uv, and would try to pip-install it when it is not on PATH
    if uv is not None:
        env["PATH"] = f"{Path(uv).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", "--output", "tag"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    [bento] = [p for p in (tmp_path / "bentoml" / "bentos" / "account_radar").iterdir() if p.name != "latest"]
    src = bento / "src"
    for shipped in (
        "serving/service.py",
        "serving/scoring/score.py",
        "features/registry.py",
        "training/model.py",
        "features/text/taxonomies/en.toml",
        "radar/cli.py",
        "radar/settings/__init__.py",
        "serving/web/templates/account.html",
        "serving/workflow/templates/digest.md",
        "serving/web/static/radar.css",
        "serving/scoring/playbooks.toml",
    ):
        assert (src / shipped).is_file(), shipped
    assert not (src / "tests").exists() and not (src / "mlruns").exists()
    manifest = (bento / "bento.yaml").read_text()
    assert "serving.service:RadarService" in manifest and "/score_accounts" in manifest
