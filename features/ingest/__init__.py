"""Validated ingest of a workspace folder into the workspace DuckDB database."""

from features.ingest.load import IngestError, IngestRefused, IngestReport, TableReport, ingest_workspace
from features.ingest.lock import WorkspaceBusy, workspace_lock
from features.ingest.read import TableReadError

__all__ = [
    "IngestError",
    "IngestRefused",
    "IngestReport",
    "TableReadError",
    "TableReport",
    "WorkspaceBusy",
    "ingest_workspace",
    "workspace_lock",
]
