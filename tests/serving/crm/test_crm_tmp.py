"""A killed file write leaves `.{name}.{hex}.tmp` beside the target (or its history file);
the next write removes them."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

from serving.crm.files import history_path, read_file
from serving.crm.table import ACCOUNTS, crm_frame
from serving.crm.write import write_scores
from serving.scoring.score import score_frame


@pytest.fixture(scope="module")
def rows(models, latest, settings, scored_at) -> pd.DataFrame:
    return crm_frame(score_frame(latest.iloc[:10], models, settings, scored_at=scored_at))


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
@pytest.mark.parametrize("changes", [True, False], ids=["new-rows", "nothing-new"])
def test_the_next_write_removes_leftovers_of_a_killed_one(rows, tmp_path, suffix, changes):
    path = tmp_path / f"crm.{suffix}"
    write_scores(rows.iloc[:5], path)
    leftover = tmp_path / f".{path.name}.{uuid.uuid4().hex}.tmp"
    leftover.write_bytes(b"half a file")  # what a killed write leaves behind
    history_leftover = tmp_path / f".{history_path(path).name}.{uuid.uuid4().hex}.tmp"
    history_leftover.write_bytes(b"half a file")
    other = tmp_path / f".other.{suffix}.{uuid.uuid4().hex}.tmp"  # another target's: not ours
    other.write_bytes(b"not ours")
    mine_looking = tmp_path / f".{path.name}.notes.tmp"  # not a name the writer makes
    mine_looking.write_bytes(b"kept")

    write_scores(rows if changes else rows.iloc[:5], path)

    assert not leftover.exists() and not history_leftover.exists()
    assert other.exists() and mine_looking.exists()
    kept = [path.name, history_path(path).name, other.name, mine_looking.name]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)
    assert len(read_file(path, ACCOUNTS)) == len(read_file(history_path(path))) == (len(rows) if changes else 5)
