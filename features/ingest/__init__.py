"""Validated ingest of a workspace folder into the workspace DuckDB database."""

from features.ingest.load import IngestError, IngestReport, TableReport, ingest_workspace
from features.ingest.read import TableReadError

__all__ = ["IngestError", "IngestReport", "TableReadError", "TableReport", "ingest_workspace"]
