"""Row-level problems stay row-level: the bad row is rejected with file, row, column and reason,
every other row loads, the counts reconcile and the other tables are as before."""

from __future__ import annotations

import duckdb

from tests.hostile.conftest import ODD_IDS, Case

# data row 191 of accounts.csv is A00190, an account with no other rows (rejecting it cascades nowhere)
SPARE_ROW = 191


def test_a_latin1_byte_rejects_its_row(case: Case):
    case.replace_line("accounts.csv", SPARE_ROW, "A00190,Caf\xe9 Co,smb,retail,eu,2022-01-01,Ann".encode("latin-1"))
    result = case.ingest()
    assert result.exit_code == 0, result.output
    case.assert_only_rejected(
        "accounts",
        [
            (
                "accounts",
                "accounts.csv",
                SPARE_ROW,
                "name",
                "unreadable",
                "not UTF-8 text: byte 0xe9 at position 4 (set ingest.encoding?)",
            )
        ],
    )


def test_a_ragged_row_of_8_fields_for_7_is_rejected(case: Case):
    case.replace_line("accounts.csv", SPARE_ROW, b"A00190,Co 190,smb,retail,eu,2022-01-01,Ann,extra")
    result = case.ingest()
    assert result.exit_code == 0, result.output
    case.assert_only_rejected(
        "accounts",
        [
            (
                "accounts",
                "accounts.csv",
                SPARE_ROW,
                "*",
                "unreadable",
                "8 fields, expected 7: 'A00190,Co 190,smb,retail,eu,2022-01-01,Ann,extra'",
            )
        ],
    )


def test_an_unterminated_quote_is_rejected(case: Case):
    # on the last row: an open quote swallows every line after it into one value
    lines = case.lines("accounts.csv")
    last = len(lines) - 1
    case.replace_line("accounts.csv", last, lines[last].replace(",Co ", ',"Co ', 1).encode())
    result = case.ingest()
    assert result.exit_code == 0, result.output
    [reject] = case.rejects()
    assert reject[:5] == ("accounts", "accounts.csv", last, "*", "unreadable")
    assert reject[5].startswith("unterminated quoted value (2 fields, expected 7): ")
    case.assert_only_rejected("accounts", [reject])


def test_seats_1e30_and_mrr_1e300_are_rejected_above_their_plausible_maximum(case: Case):
    lines = case.lines("subscriptions.csv")
    case.replace_line("subscriptions.csv", 5, lines[5].replace(",104,9,", ",104,1e30,").encode())
    case.replace_line("subscriptions.csv", 7, lines[7].replace(",106,11,", ",1e300,11,").encode())
    result = case.ingest()
    assert result.exit_code == 0, result.output
    case.assert_only_rejected(
        "subscriptions",
        [
            ("subscriptions", "subscriptions.csv", 5, "seats", "max", "'1e30' is above the maximum 1e+06"),
            ("subscriptions", "subscriptions.csv", 7, "mrr", "max", "'1e300' is above the maximum 1e+07"),
        ],
    )
    # a rejected line never reads as a churn: the labels of its two accounts are unknown from its start
    assert "labels unknown for 2 account(s)" in result.output


def test_nul_bytes_and_control_characters_in_ids_and_text_are_rejected(case: Case):
    case.replace_line("usage_events.csv", 3, b"A00\x000,2023-04-13 10:00:00,login,u0-0,")
    case.replace_line("usage_events.csv", 4, b"A00000,2023-05-14 10:00:00,report,u\x070-1,")
    case.replace_line("usage_events.csv", 5, b"A00000,2023-06-15 10:00:00,exp\x00ort,u0-2,")
    result = case.ingest()
    assert result.exit_code == 0, result.output
    case.assert_only_rejected(
        "usage_events",
        [
            (
                "usage_events",
                "usage_events.csv",
                3,
                "account_id",
                "control_character",
                "non-printable control character 0x00 in an id: 'A00?0'",
            ),
            (
                "usage_events",
                "usage_events.csv",
                4,
                "user_id",
                "control_character",
                "non-printable control character 0x07 in an id: 'u?0-1'",
            ),
            (
                "usage_events",
                "usage_events.csv",
                5,
                "event_type",
                "control_character",
                "NUL byte (0x00) in text: 'exp?ort'",
            ),
        ],
    )


def test_ids_with_slashes_percent_quotes_and_markup_are_kept_verbatim(baseline):
    # the web pages and `radar score` open and print them (see this package's docstring)
    with duckdb.connect(str(baseline.out / "radar.duckdb"), read_only=True) as con:
        ids = {r[0] for r in con.execute("SELECT account_id FROM accounts").fetchall()}
    assert set(ODD_IDS) <= ids
