"""CRM: the scores as tables RevOps syncs into the CRM, written all or nothing.

Owns the tables' columns and projection (table: `crm_accounts`, `crm_score_history`), how
a write moves the account rows (accounts), CSV cells a spreadsheet cannot execute
(csv_cells), the writers (files: Parquet, CSV, DuckDB; sql: SQLAlchemy URLs such as
PostgreSQL), the one entry that picks a writer (write), reading them back (read) and the
same rows computed on Spark (spark).

May import `serving.scoring`, `serving.render`, `features`, `training` and `radar`; never
`serving.workflow` or `serving.web`.
"""
