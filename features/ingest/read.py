"""Find a workspace's table files and stream their rows as all-text Arrow batches.

Each table is `<name>.csv`, `<name>.parquet` or a folder `<name>/` of part files.
Rows are read as text (types are checked later, row by row) and tagged with their
source file and 1-based data-row number, so every rejected row can be traced back.

Row-level read problems stay row-level: a CSV row with too many or too few fields (an
unterminated quote shows up as one) or a value that is not valid text in the file's
encoding comes out as a row with `_read_column` / `_read_reason` set, which the checks
turn into a reject; the rest of the file loads. A file that cannot be read at all (not
the declared format, a broken Parquet part) raises TableReadError naming it.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from features.contract import TABLES

SUFFIXES = (".csv", ".parquet")
SOURCE_FILE = "_source_file"
ROW_NUMBER = "_row"
READ_COLUMN = "_read_column"
READ_REASON = "_read_reason"


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


def _is_utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name == "utf-8"


def shown_path(path: Path) -> str:
    """A file as messages name it: `name.csv`, or `table/part-0.parquet` for a part of a table folder."""
    return f"{path.parent.name}/{path.name}" if path.parent.name in TABLES else path.name


def _parquet(path: Path) -> pq.ParquetFile:
    try:  # pages written with a checksum (CRC) are verified: a corrupt page is an error, not silent garbage
        return pq.ParquetFile(path, page_checksum_verification=True)
    except (pa.ArrowException, OSError) as exc:
        hint = ""
        with path.open("rb") as fh:
            start = fh.read(4096)
        if b"\x00" not in start and start.isascii() and b"," in start:
            hint = f"; it looks like CSV text: name it {path.stem}.csv"
        raise TableReadError(f"{shown_path(path)}: not a readable Parquet file ({exc}){hint}") from exc


def _source_columns(path: Path, encoding: str = "utf-8") -> list[str]:
    if is_empty(path):
        return []
    if path.suffix == ".parquet":
        return list(_parquet(path).schema_arrow.names)
    with path.open("rb") as fh:  # decode the header line only: a bad byte further down is the reader's to report
        first = fh.readline()
    if first.startswith(b"PAR1"):
        raise TableReadError(f"{shown_path(path)}: a Parquet file, not CSV: name it {path.stem}.parquet")
    if b"\x00" in first:
        raise TableReadError(f"{shown_path(path)}: not a CSV file (binary data in its header row)")
    try:  # a UTF-8 byte order mark is dropped
        header = next(csv.reader([first.decode("utf-8-sig" if _is_utf8(encoding) else encoding)]), None)
    except UnicodeDecodeError as exc:
        raise TableReadError(
            f"{shown_path(path)}: the header row is not {encoding} text ({exc}); is it a CSV file? "
            "(set ingest.encoding for another encoding)"
        ) from exc
    if not header:
        raise TableReadError(f"{shown_path(path)}: no header row")
    return header


def file_columns(path: Path, mapping: dict[str, str], encoding: str = "utf-8") -> list[str]:
    """Column names of a file after renaming with the user's mapping."""
    names = [c.strip() for c in _source_columns(path, encoding)]
    renamed = [mapping.get(n, n) for n in names]
    dupes = sorted({n for n in renamed if renamed.count(n) > 1})
    if dupes:
        raise TableReadError(
            f"{shown_path(path)}: column(s) {', '.join(dupes)} appear more than once after the column mapping"
        )
    return renamed


@dataclass(frozen=True)
class _BadRow:
    """A CSV row the parser could not split into the header's fields."""

    row: int  # 1-based data row
    expected: int
    actual: int
    text: str

    @property
    def reason(self) -> str:
        shown = self.text[:60].replace("\n", "\\n")
        if self.text.count('"') % 2:
            return f"unterminated quoted value ({self.actual} fields, expected {self.expected}): '{shown}'"
        return f"{self.actual} fields, expected {self.expected}: '{shown}'"


def _decode(column: pa.Array, name: str, first_row: np.ndarray, problems: dict[int, tuple[str, str]]) -> pa.Array:
    """Binary CSV values as UTF-8 text; a value that is not UTF-8 becomes null and a problem of its row."""
    try:
        return column.cast(pa.string())
    except pa.ArrowInvalid:
        pass
    values = column.to_pylist()
    text: list[str | None] = []
    for i, value in enumerate(values):
        try:
            text.append(None if value is None else value.decode("utf-8"))
        except UnicodeDecodeError as exc:
            text.append(None)
            bad = value[exc.start : exc.start + 1].hex()
            problems.setdefault(
                int(first_row[i]),
                (name, f"not UTF-8 text: byte 0x{bad} at position {exc.start + 1} (set ingest.encoding?)"),
            )
    return pa.array(text, pa.string())


def _text_batches(
    path: Path, batch_rows: int, encoding: str = "utf-8"
) -> Iterator[tuple[pa.RecordBatch, np.ndarray, dict[int, tuple[str, str]]]]:
    """(text batch, data-row numbers, {row: (column, reason)} of rows that could not be read)."""
    if is_empty(path):
        return
    if path.suffix == ".parquet":  # values in their stored types: stream_rows casts them to its schema's
        row = 0
        for batch in _parquet(path).iter_batches(batch_size=batch_rows):
            n = batch.num_rows
            yield batch, np.arange(row + 1, row + n + 1, dtype=np.int64), {}
            row += n
        return
    names = _source_columns(path, encoding)
    with path.open("rb") as fh:
        fh.readline()
        if not fh.read(1):
            return  # the header only (perhaps without its line end): no rows
    bad_rows: dict[int, _BadRow] = {}

    def on_bad_row(row) -> str:
        number = (row.number or 0) - 1  # the parser counts the header line
        bad_rows[number] = _BadRow(number, row.expected_columns, row.actual_columns, row.text or "")
        return "skip"

    utf8 = _is_utf8(encoding)
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(
            column_names=names,
            skip_rows=1,
            block_size=16 << 20,
            encoding="utf8" if utf8 else encoding,
            use_threads=False,  # so that the parser knows the number of each row it skips
        ),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_bad_row),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.binary() if utf8 else pa.string() for n in names},
            strings_can_be_null=True,
            null_values=[""],
        ),
    )
    last, emitted = 0, set()

    def skipped_up_to(row: int) -> Iterator[tuple[pa.RecordBatch, np.ndarray, dict[int, tuple[str, str]]]]:
        rows = sorted(r for r in bad_rows if r <= row and r not in emitted)
        if rows:
            emitted.update(rows)
            yield (
                pa.RecordBatch.from_arrays([pa.nulls(len(rows), pa.string()) for _ in names], names=names),
                np.array(rows, dtype=np.int64),
                {r: ("*", bad_rows[r].reason) for r in rows},
            )

    for batch in reader:
        n = batch.num_rows
        skipped = np.array(sorted(r for r in bad_rows if r > last), dtype=np.int64)
        numbers = np.arange(last + 1, last + n + len(skipped) + 1, dtype=np.int64)
        if len(skipped):
            numbers = numbers[~np.isin(numbers, skipped)]
        numbers = numbers[:n]
        problems: dict[int, tuple[str, str]] = {}
        columns = [_decode(c, name, numbers, problems) if utf8 else c for c, name in zip(batch.columns, names)]
        if n:
            last = int(numbers[-1])
            yield pa.RecordBatch.from_arrays(columns, names=names), numbers, problems
        yield from skipped_up_to(last)
    yield from skipped_up_to(max(bad_rows, default=0))


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


def _native(arrow: pa.DataType, wanted: str) -> bool:
    """Whether a Parquet column of type `arrow` holds contract type `wanted` as it is (no text needed)."""
    if wanted == "timestamp":
        return pa.types.is_timestamp(arrow) and arrow.tz is None
    if wanted == "date":
        return pa.types.is_date(arrow)
    if wanted == "float":
        return pa.types.is_floating(arrow)
    if wanted == "int":
        return pa.types.is_integer(arrow) and arrow != pa.uint64()
    if wanted == "bool":
        return pa.types.is_boolean(arrow)
    return False


NATIVE_TYPES = {
    "timestamp": pa.timestamp("us"),
    "date": pa.date32(),
    "float": pa.float64(),
    "int": pa.int64(),
    "bool": pa.bool_(),
}


def native_columns(files: TableFiles, types: dict[str, str], mapping: dict[str, str]) -> dict[str, pa.DataType]:
    """Columns every file of the table stores in their contract type (Parquet only): these are
    streamed as they are, not as text to parse again. {column: Arrow type of the stream}."""
    found: dict[str, pa.DataType] = {}
    nonempty = [p for p in files.files if not is_empty(p)]
    if not nonempty or any(p.suffix != ".parquet" for p in nonempty):
        return {}
    schemas = []
    for path in nonempty:
        schema = _parquet(path).schema_arrow
        schemas.append({mapping.get(n.strip(), n.strip()): schema.field(i).type for i, n in enumerate(schema.names)})
    for column, wanted in types.items():
        if wanted in NATIVE_TYPES and all(column in s and _native(s[column], wanted) for s in schemas):
            found[column] = NATIVE_TYPES[wanted]
    return found


def _as(array: pa.Array, to: pa.DataType) -> pa.Array:
    if array.type == to:
        return array
    if pa.types.is_timestamp(to):  # nanoseconds and the like: DuckDB keeps microseconds
        return array.cast(to, safe=False)
    return array.cast(to)


def stream_rows(
    files: TableFiles,
    columns: list[str],
    mapping: dict[str, str],
    batch_rows: int,
    failures: list[TableReadError] | None = None,
    encoding: str = "utf-8",
    native: dict[str, pa.DataType] | None = None,
) -> pa.RecordBatchReader:
    """One stream of text batches over all of a table's files, in the given column order.

    Columns a file lacks come out null; columns outside `columns` are dropped. `native`
    columns (see native_columns) keep their stored type; all others are text. A row that
    could not be read has `_read_column` and `_read_reason` set (and its values null). A
    file that cannot be read raises TableReadError naming it and the row; it is also
    appended to `failures`, as whoever consumes the stream (DuckDB) may wrap it in its own error.
    """
    schema = pa.schema(
        [pa.field(SOURCE_FILE, pa.string()), pa.field(ROW_NUMBER, pa.int64())]
        + [pa.field(READ_COLUMN, pa.string()), pa.field(READ_REASON, pa.string())]
        + [pa.field(c, (native or {}).get(c, pa.string())) for c in columns]
    )

    def batches() -> Iterator[pa.RecordBatch]:
        for path in files.files:
            names = file_columns(path, mapping, encoding)
            source = shown_path(path)
            row = 0
            batches = _text_batches(path, batch_rows, encoding)
            while True:
                try:
                    batch, numbers, problems = next(batches)
                except StopIteration:
                    break
                except (pa.ArrowException, OSError, UnicodeError, ValueError) as exc:
                    error = exc if isinstance(exc, TableReadError) else _read_error(path, source, row, exc)
                    if failures is not None:
                        failures.append(error)
                    raise error from exc
                n = batch.num_rows
                if n:
                    row = max(row, int(numbers.max()))
                by_name = dict(zip(names, batch.columns, strict=True))
                found = [problems.get(int(r)) for r in numbers] if problems else None
                arrays = [
                    pa.repeat(pa.scalar(source, pa.string()), n),
                    pa.array(numbers, pa.int64()),
                    pa.array([p and p[0] for p in found], pa.string()) if found else pa.nulls(n, pa.string()),
                    pa.array([p and p[1] for p in found], pa.string()) if found else pa.nulls(n, pa.string()),
                ] + [
                    _as(by_name[c], field.type) if c in by_name else pa.nulls(n, field.type)
                    for c, field in zip(columns, list(schema)[4:], strict=True)
                ]
                yield pa.RecordBatch.from_arrays(arrays, schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())
