"""CRM: the scores as a table RevOps syncs into the CRM, written all or nothing.

Owns the table's columns and projection (table), its writers (files: Parquet, CSV,
DuckDB; sql: SQLAlchemy URLs such as PostgreSQL), the one entry that picks a writer
(write) and the same rows computed on Spark (spark).

May import `serving.scoring`, `serving.render`, `features`, `training` and `radar`; never
`serving.workflow` or `serving.web`.
"""
