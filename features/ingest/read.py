"""Find a workspace's table files and stream their rows as all-text Arrow batches.

Each table is `<name>.csv`, `<name>.parquet` or a folder `<name>/` of part files.
Rows are read as text (types are checked later, row by row) and tagged with their
source file and 1-based data-row number, so every rejected row can be traced back.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

SUFFIXES = (".csv", ".parquet")
SOURCE_FILE = "_source_file"
ROW_NUMBER = "_row"


class TableReadError(ValueError):
    """A table's files cannot be read as the contract needs; the message says what to fix."""


@dataclass(frozen=True)
class TableFiles:
    table: str
    files: tuple[Path, ...]

    def describe(self) -> str:
        if len(self.files) == 1:
            return self.files[0].name
        return f"{self.files[0].parent.name}/ ({len(self.files)} files)"


def find_table_files(workspace: Path, table: str) -> TableFiles | None:
    """The files of `table` in `workspace`, or None when the table is absent."""
    single = [workspace / f"{table}{s}" for s in SUFFIXES if (workspace / f"{table}{s}").is_file()]
    folder = workspace / table
    if single and folder.is_dir():
        raise TableReadError(f"{table}: both {single[0].name} and a folder {table}/ exist; keep one")
    if len(single) > 1:
        raise TableReadError(f"{table}: several files ({', '.join(p.name for p in single)}); keep one")
    if folder.is_dir():
        parts = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in SUFFIXES)
        if not parts:
            raise TableReadError(f"{table}: folder {table}/ holds no .csv or .parquet part files")
        return TableFiles(table, tuple(parts))
    return TableFiles(table, tuple(single)) if single else None


def is_empty(path: Path) -> bool:
    """A file of 0 bytes: a table with no rows (and no header to check)."""
    return path.stat().st_size == 0


def _source_columns(path: Path) -> list[str]:
    if is_empty(path):
        return []
    if path.suffix == ".parquet":
        return list(pq.ParquetFile(path).schema_arrow.names)
    with path.open("rb") as fh:  # decode the header line only: a bad byte further down is the reader's to report
        first = fh.readline()
    try:
        header = next(csv.reader([first.decode("utf-8-sig")]), None)
    except UnicodeDecodeError as exc:
        raise TableReadError(f"{path.name}: the header row is not UTF-8 text ({exc})") from exc
    if not header:
        raise TableReadError(f"{path.name}: no header row")
    return header


def file_columns(path: Path, mapping: dict[str, str]) -> list[str]:
    """Column names of a file after renaming with the user's mapping."""
    names = [c.strip() for c in _source_columns(path)]
    renamed = [mapping.get(n, n) for n in names]
    dupes = sorted({n for n in renamed if renamed.count(n) > 1})
    if dupes:
        raise TableReadError(
            f"{path.name}: column(s) {', '.join(dupes)} appear more than once after the column mapping"
        )
    return renamed


def _text_batches(path: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
    if is_empty(path):
        return
    if path.suffix == ".parquet":
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
            yield pa.RecordBatch.from_arrays([col.cast(pa.string()) for col in batch.columns], names=batch.schema.names)
        return
    names = _source_columns(path)
    with path.open("rb") as fh:
        fh.readline()
        if not fh.read(1):
            return  # the header only (perhaps without its line end): no rows
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=16 << 20, encoding="utf8"),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            strings_can_be_null=True,
            null_values=[""],
        ),
    )
    for batch in reader:
        yield batch


def _first_bad_utf8_line(path: Path) -> int | None:
    """The 1-based line of a CSV file holding its first byte that is not UTF-8, if any."""
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return None


def _read_error(path: Path, source: str, row: int, exc: Exception) -> TableReadError:
    where = f"after data row {row:,}"
    if path.suffix == ".csv" and "UTF8" in str(exc) and (line := _first_bad_utf8_line(path)):
        where = f"at line {line:,} (data row {line - 1:,}, if no value spans lines): a byte that is not UTF-8 text"
    return TableReadError(f"{source}: unreadable {where}: {exc}")


def stream_rows(
    files: TableFiles,
    columns: list[str],
    mapping: dict[str, str],
    batch_rows: int,
    failures: list[TableReadError] | None = None,
) -> pa.RecordBatchReader:
    """One stream of text batches over all of a table's files, in the given column order.

    Columns a file lacks come out null; columns outside `columns` are dropped. A file
    that cannot be read raises TableReadError naming it and the row; it is also appended
    to `failures`, as whoever consumes the stream (DuckDB) may wrap it in its own error.
    """
    schema = pa.schema(
        [pa.field(SOURCE_FILE, pa.string()), pa.field(ROW_NUMBER, pa.int64())]
        + [pa.field(c, pa.string()) for c in columns]
    )

    def batches() -> Iterator[pa.RecordBatch]:
        for path in files.files:
            names = file_columns(path, mapping)
            source = str(path.relative_to(files.files[0].parent.parent)) if len(files.files) > 1 else path.name
            row = 0
            batches = _text_batches(path, batch_rows)
            while True:
                try:
                    batch = next(batches)
                except StopIteration:
                    break
                except (pa.ArrowException, OSError, UnicodeError, ValueError) as exc:
                    error = _read_error(path, source, row, exc)
                    if failures is not None:
                        failures.append(error)
                    raise error from exc
                n = batch.num_rows
                by_name = dict(zip(names, batch.columns, strict=True))
                arrays = [
                    pa.repeat(pa.scalar(source, pa.string()), n),
                    pa.array(np.arange(row + 1, row + n + 1, dtype=np.int64)),
                ] + [by_name.get(c, pa.nulls(n, pa.string())) for c in columns]
                row += n
                yield pa.RecordBatch.from_arrays(arrays, schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())
