"""Test-wide environment and the real servers every test package shares.

LightGBM's OpenMP threads spin while they wait for each other; on a busy 2-core machine
that made training 4-8x slower, so the environment is set before any test module imports
LightGBM (the `radar` entry point sets the same). One throwaway PostgreSQL cluster per
session serves the CRM writer, database workspaces and the MLflow backend store; each
user takes a database of its own (`postgres_database`).
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest

# --- a real PostgreSQL server (CRM writer, database workspaces, MLflow backend store) -------
# Needs the server binaries (Debian: `apt-get install postgresql`) and the psycopg driver.
# Without them the PostgreSQL tests skip, unless RADAR_REQUIRE_POSTGRES=1 (CI), where they fail.
# The fixture installs nothing; it runs a throwaway cluster on 127.0.0.1 in a temp dir.


def _unavailable(reason: str):
    import os

    if os.environ.get("RADAR_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"RADAR_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(reason)


def _postgres_bin():
    import glob
    import shutil
    from pathlib import Path

    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found and shutil.which("pg_ctl") else None


@pytest.fixture(scope="session")
def postgres_url():
    import os
    import shutil
    import socket
    import subprocess
    import tempfile
    import time
    from pathlib import Path

    try:
        import psycopg
    except ImportError:
        _unavailable("the psycopg driver is not installed (psycopg[binary])")
    bin_dir = _postgres_bin()
    if bin_dir is None:
        _unavailable("PostgreSQL server binaries (initdb, pg_ctl) not found (Debian package: postgresql)")
    as_user: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="radar-pg-"))
    if os.geteuid() == 0:  # initdb refuses root: run the cluster as the postgres OS user
        import pwd

        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(base)
            _unavailable("running as root and there is no 'postgres' OS user to run the server")
        os.chown(base, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data = base / "data"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def run(*args: str, timeout: float = 60):
        done = subprocess.run([*as_user, *args], capture_output=True, text=True, timeout=timeout)
        if done.returncode:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {done.stdout}\n{done.stderr}")

    url = f"postgresql+psycopg://radar@127.0.0.1:{port}/postgres"
    started = False
    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-U", "radar", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={base} "
            "-c fsync=off -c full_page_writes=off"
        )
        run(
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(base / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
            timeout=90,
        )
        started = True
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(f"host=127.0.0.1 port={port} user=radar dbname=postgres", connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    except (RuntimeError, subprocess.TimeoutExpired, psycopg.OperationalError) as exc:
        log = base / "server.log"
        detail = log.read_text()[-2000:] if log.exists() else ""
        pytest.fail(f"could not start PostgreSQL: {exc}\n{detail}")
    finally:
        if started:
            subprocess.run(
                [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_database(postgres_url):
    """A factory: `postgres_database("name")` creates an empty database of that name on the
    session's server and returns its SQLAlchemy URL (postgresql+psycopg://...)."""
    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(postgres_url)

    def create(name: str) -> str:
        if not name.isidentifier():
            raise ValueError(f"database name {name!r} must be a plain identifier")
        with psycopg.connect(
            host=server.host, port=server.port, user=server.username, dbname=server.database, autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return server.set(database=name).render_as_string(hide_password=False)

    return create


@pytest.fixture(scope="session")
def spark_required():
    """Skip the Spark tests without pyspark (the `spark` extra) or a Java runtime, unless
    RADAR_REQUIRE_SPARK=1 (CI), where that is a failure."""
    import os
    import shutil

    reason = None
    try:
        import pyspark  # noqa: F401
    except ImportError:
        reason = "pyspark is not installed (uv sync --extra spark)"
    if reason is None and shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        reason = "no Java runtime (Debian package: openjdk-17-jre-headless)"
    if reason is not None:
        if os.environ.get("RADAR_REQUIRE_SPARK") == "1":
            pytest.fail(f"RADAR_REQUIRE_SPARK=1 but {reason}")
        pytest.skip(reason)
