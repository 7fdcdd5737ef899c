"""The as-of calendar: month-ends and Mondays in a closed date range."""

from datetime import date

import ibis
import pytest

from features.calendar import as_of_calendar, calendar_table


def test_month_ends_in_range_including_leap_february():
    # given a range from mid-January to the end of April 2024 (a leap year)
    # when the monthly calendar is built
    dates = as_of_calendar(date(2024, 1, 15), date(2024, 4, 30), "month")
    # then it holds every month-end inside the range, both bounds included
    assert dates == [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30)]


def test_month_end_before_start_or_after_end_is_left_out():
    # given a range that starts after January's end and stops before March's end
    dates = as_of_calendar(date(2023, 2, 1), date(2023, 3, 30), "month")
    # then only February's month-end (not a leap year) is in it
    assert dates == [date(2023, 2, 28)]


def test_month_ends_across_a_year_boundary():
    dates = as_of_calendar(date(2023, 11, 30), date(2024, 1, 31), "month")
    assert dates == [date(2023, 11, 30), date(2023, 12, 31), date(2024, 1, 31)]


def test_weekly_calendar_is_every_monday_in_range():
    # given Wednesday 2024-01-03 to Monday 2024-01-29
    dates = as_of_calendar(date(2024, 1, 3), date(2024, 1, 29), "week")
    # then the Mondays 8, 15, 22 and 29 January (the end bound included)
    assert dates == [date(2024, 1, 8), date(2024, 1, 15), date(2024, 1, 22), date(2024, 1, 29)]
    assert all(d.weekday() == 0 for d in dates)


def test_weekly_calendar_starting_on_a_monday_includes_it():
    assert as_of_calendar(date(2024, 1, 1), date(2024, 1, 7), "week") == [date(2024, 1, 1)]


def test_empty_range_gives_no_dates():
    assert as_of_calendar(date(2024, 1, 2), date(2024, 1, 7), "week") == []
    assert as_of_calendar(date(2024, 1, 1), date(2024, 1, 30), "month") == []


def test_unknown_frequency_is_an_error():
    with pytest.raises(ValueError, match="freq"):
        as_of_calendar(date(2024, 1, 1), date(2024, 2, 1), "day")  # type: ignore[arg-type]


def test_calendar_table_has_one_sorted_unique_date_column():
    # given dates out of order with a duplicate
    table = calendar_table([date(2024, 2, 29), date(2024, 1, 31), date(2024, 2, 29)])
    # then the table has one column as_of of type date, sorted and unique
    assert table.schema() == ibis.schema({"as_of": "date"})
    out = ibis.duckdb.connect().to_pyarrow(table)
    assert out.column("as_of").to_pylist() == [date(2024, 1, 31), date(2024, 2, 29)]


def test_empty_calendar_table_keeps_its_type():
    assert calendar_table([]).schema() == ibis.schema({"as_of": "date"})
