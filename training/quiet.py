"""MLflow's own chatter off while a `radar` command runs (set-up logs, registration
messages, download bars): the command reports what matters itself. Light to import:
every CLI module uses it before MLflow is loaded."""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_mlflow() -> Iterator[None]:
    """MLflow's own chatter (database set-up, 'Successfully registered', download bars)
    off while a command runs: the command reports what matters itself."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)
