"""`radar serve` with a damaged registry: it says what is broken and how to repair it and
exits 1 before starting any server; and if the champion breaks after that check, it stops
after serving.max_worker_start_failures failed worker starts instead of restarting them
forever. Each project is a copy of the served project with its own store."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("RADAR_")}


def _serve(root, radar_cli, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*radar_cli, "--config", str(root / "radar.toml"), "serve", "--port", str(_free_port()), "--workers", "1"],
        cwd=root,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_serve_with_the_champions_files_deleted_says_how_to_repair_and_exits_1(
    served_project, served_copy, radar_cli, tmp_path
):
    settings = served_copy.project(served_project, tmp_path / "project")
    version = served_copy.register(settings, "renewal", tmp_path / "model", alias="champion")
    shutil.rmtree(tmp_path / "model")
    started = time.monotonic()
    done = _serve(tmp_path / "project", radar_cli, timeout=180)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    text = " ".join(output.split())
    assert f"radar-renewal v{version} (the champion) cannot be read" in text
    assert "radar train --target renewal --promote" in text and "radar promote renewal --to VERSION" in text
    assert "Traceback" not in output and "MlflowException" not in output
    assert len(output.strip().splitlines()) <= 8, output
    assert "serving radar-renewal" not in text  # nothing announced, no server started
    print(f"\nexit 1 after {time.monotonic() - started:.1f} s, {len(output.strip().splitlines())} lines")


def test_serve_with_a_store_of_random_bytes_says_so_and_exits_1(served_project, served_copy, radar_cli, tmp_path):
    settings = served_copy.project(served_project, tmp_path / "project")
    store = settings.training.tracking_uri.removeprefix("sqlite:///")
    with open(store, "wb") as out:
        out.write(os.urandom(256 * 1024))
    done = _serve(tmp_path / "project", radar_cli, timeout=180)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    text = " ".join(output.split())
    assert "the MLflow registry at" in text and "cannot be read" in text and "file is not a database" in text
    assert "restore that store from a backup" in text
    assert "Traceback" not in output and len(output.strip().splitlines()) <= 8, output


@pytest.mark.slow  # two real worker starts (~40 s alone, minutes on a busy machine)
def test_serve_stops_after_the_configured_worker_start_failures(served_project, served_copy, radar_cli, tmp_path):
    """The champion's files vanish between `radar serve`'s check and the workers' start."""
    root = tmp_path / "project"
    settings = served_copy.project(served_project, root, "max_worker_start_failures = 2")
    served_copy.register(settings, "renewal", tmp_path / "model", alias="champion")
    log_path = root / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [*radar_cli, "--config", str(root / "radar.toml"), "serve", "--port", str(_free_port()), "--workers", "1"],
            cwd=root,
            env=_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while "serving radar-renewal" not in log_path.read_text():  # checked and announced: now break it
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        shutil.rmtree(tmp_path / "model")
        started = time.monotonic()
        returncode = proc.wait(timeout=300)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    output = log_path.read_text()
    assert returncode == 1, output
    failures = [line for line in output.splitlines() if "worker cannot start" in line]
    assert len(failures) == 2, output  # bounded: two failed starts, then the stop
    assert "2 service workers failed to start; stopping" in output
    assert "radar promote renewal --to VERSION" in output and "Traceback" not in output
    assert len(output.splitlines()) <= 20, output
    with pytest.raises(ProcessLookupError):  # the server and its workers are gone too
        os.killpg(proc.pid, 0)
    print(f"\nstopped {took:.1f} s after the files vanished, {len(output.splitlines())} log lines")
