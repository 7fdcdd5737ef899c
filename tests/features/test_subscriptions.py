"""Relationships, churn events, the snapshot population and subscription features.

Hand-written histories whose answers are worked out in the comments, then two property
tests on random small histories run on DuckDB: churn events agree with a day-by-day
reading of the definition, and features at as_of ignore every line starting on/after it.
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import ibis
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.calendar import calendar_table
from features.subscriptions import (
    active_accounts,
    churn_events,
    feature_columns,
    subscription_features,
)

D = date.fromisoformat
SCHEMA = pa.schema(
    [
        ("subscription_id", pa.string()),
        ("account_id", pa.string()),
        ("product", pa.string()),
        ("start_date", pa.date32()),
        ("end_date", pa.date32()),
        ("mrr", pa.float64()),
        ("seats", pa.int64()),
        ("billing_period", pa.int64()),  # months
    ]
)
_ids = itertools.count()


def line(account, product, start, end, mrr, seats=None, period=None, sid=None) -> dict:
    return {
        "subscription_id": sid or f"s{next(_ids)}",
        "account_id": account,
        "product": product,
        "start_date": D(start) if isinstance(start, str) else start,
        "end_date": D(end) if isinstance(end, str) else end,
        "mrr": float(mrr),
        "seats": seats,
        "billing_period": period,
    }


def subs(*lines: dict) -> ibis.Table:
    return ibis.memtable(pa.Table.from_pylist(list(lines), schema=SCHEMA))


@pytest.fixture(scope="module")
def con():
    return ibis.duckdb.connect()


def rows(con, expr) -> list[dict]:
    """Execute and return plain Python rows sorted by their first columns."""
    out = con.to_pyarrow(expr).to_pylist()
    return sorted(out, key=lambda r: tuple(str(v) for v in r.values()))


def events(con, table, data_end, grace_days=30) -> list[tuple[str, date]]:
    return [(r["account_id"], r["churn_date"]) for r in rows(con, churn_events(table, grace_days, D(data_end)))]


# --- churn events -----------------------------------------------------------------


def test_monthly_renewals_are_not_churn_until_the_last_line_lapses(con):
    # given six back-to-back monthly lines, January to June 2024 (the last ends 1 July)
    monthly = subs(*(line("a", "base", f"2024-{m:02d}-01", f"2024-{m + 1:02d}-01", 100) for m in range(1, 7)))
    # when the data end on 20 July, 19 zero days are seen: less than the 30-day grace
    # then no churn (the renewals in between never brought MRR to 0)
    assert events(con, monthly, "2024-07-20") == []
    # when the data end on 31 July, 1-30 July (30 zero days) are seen: churn on 1 July
    assert events(con, monthly, "2024-07-31") == [("a", D("2024-07-01"))]
    # one day earlier the grace period is not complete yet
    assert events(con, monthly, "2024-07-30") == []


def test_annual_renewals_with_an_open_ended_last_line_never_churn(con):
    annual = subs(
        line("a", "base", "2021-03-15", "2022-03-15", 500, period=12),
        line("a", "base", "2022-03-15", "2023-03-15", 550, period=12),
        line("a", "base", "2023-03-15", None, 600, period=12),
    )
    assert events(con, annual, "2030-01-01") == []


@pytest.mark.parametrize(
    ("restart", "expected"),
    [
        # 2024 is a leap year: zero MRR on 1-29 February = 29 days < 30 -> same relationship
        ("2024-03-01", []),
        # zero MRR on 1 February - 1 March = 30 days = the grace period -> churn on 1 Feb
        ("2024-03-02", [("a", D("2024-02-01"))]),
    ],
)
def test_a_lapse_is_churn_only_when_it_lasts_the_grace_period(con, restart, expected):
    table = subs(
        line("a", "base", "2024-01-01", "2024-02-01", 100),
        line("a", "base", restart, None, 100),
    )
    assert events(con, table, "2025-01-01") == expected


def test_churn_when_mrr_stays_zero_for_the_grace_period(con):
    # given one line ending 1 April and nothing after; data until 1 June
    table = subs(line("a", "base", "2024-01-01", "2024-04-01", 100))
    # then MRR went to 0 on 1 April and stayed 0: one churn on 1 April
    assert events(con, table, "2024-06-01") == [("a", D("2024-04-01"))]


def test_reactivation_then_second_churn_are_two_events(con):
    # given Jan-Feb 2023, a 3-month gap, then Jun-Aug 2023
    table = subs(
        line("a", "base", "2023-01-01", "2023-03-01", 100),
        line("a", "base", "2023-06-01", "2023-09-01", 120),
    )
    # then two events: 1 March and 1 September
    assert events(con, table, "2024-01-01") == [("a", D("2023-03-01")), ("a", D("2023-09-01"))]
    # when the data end on 20 September, the second churn is not confirmed yet, but the
    # first is (the account's MRR demonstrably stayed 0 until June)
    assert events(con, table, "2023-09-20") == [("a", D("2023-03-01"))]


def test_overlapping_lines_use_the_running_maximum_end(con):
    # given a year-long line with a short line inside it, and a new line 19 days after
    # the long line ends: comparing with the short line's end would see a 9-month gap
    table = subs(
        line("a", "base", "2023-01-01", "2023-12-01", 100),
        line("a", "addon", "2023-02-01", "2023-03-01", 20),
        line("a", "base", "2023-12-20", None, 100),
    )
    # then one continuous relationship: no churn
    assert events(con, table, "2025-01-01") == []


def test_zero_mrr_line_does_not_keep_the_relationship_alive(con):
    # given paid Jan-Feb, a free (mrr 0) line March-May, paid again from June
    table = subs(
        line("a", "base", "2024-01-01", "2024-03-01", 100),
        line("a", "free", "2024-03-01", "2024-06-01", 0),
        line("a", "base", "2024-06-01", None, 100),
    )
    # then MRR was 0 from 1 March to 31 May: churn on 1 March
    assert events(con, table, "2025-01-01") == [("a", D("2024-03-01"))]


def test_zero_grace_days_still_needs_mrr_to_reach_zero(con):
    table = subs(
        line("a", "base", "2024-01-01", "2024-02-01", 100),
        line("a", "base", "2024-02-01", "2024-03-01", 100),  # touching: never 0
        line("a", "base", "2024-03-02", None, 100),  # one zero day: 1 March
    )
    assert events(con, table, "2025-01-01", grace_days=0) == [("a", D("2024-03-01"))]


def test_accounts_are_independent(con):
    table = subs(
        line("a", "base", "2024-01-01", "2024-02-01", 100),
        line("b", "base", "2024-01-15", "2024-02-10", 100),
        line("b", "base", "2024-02-20", None, 100),
    )
    assert events(con, table, "2025-01-01") == [("a", D("2024-02-01"))]


# --- snapshot population ----------------------------------------------------------


def test_active_accounts_see_lines_started_before_as_of_and_in_force_on_the_eve(con):
    table = subs(
        # a: January line ends on 1 Feb, the February renewal starts on 1 Feb
        line("a", "base", "2024-01-01", "2024-02-01", 100, seats=5),
        line("a", "base", "2024-02-01", "2024-03-01", 110, seats=6),
        # b: only a free line; c: ended in 2023; d: two lines at once
        line("b", "free", "2023-06-01", None, 0, seats=3),
        line("c", "base", "2023-01-01", "2023-12-01", 100, seats=1),
        line("d", "base", "2023-06-01", None, 100, seats=5),
        line("d", "addon", "2023-09-01", "2024-09-01", 30),
    )
    cal = calendar_table([D("2024-01-01"), D("2024-02-01"), D("2024-03-01")])
    got = rows(con, active_accounts(table, cal))
    assert got == [
        # 1 Jan: a's first line starts that day -> not seen yet, no row
        # 1 Feb: the January line (in force on 31 Jan) is seen, the renewal is not
        {"account_id": "a", "as_of": D("2024-02-01"), "mrr": 100.0, "seats": 5},
        {"account_id": "a", "as_of": D("2024-03-01"), "mrr": 110.0, "seats": 6},
        # b (MRR 0) and c (ended) never get a row; d sums both lines
        {"account_id": "d", "as_of": D("2024-01-01"), "mrr": 130.0, "seats": 5},
        {"account_id": "d", "as_of": D("2024-02-01"), "mrr": 130.0, "seats": 5},
        {"account_id": "d", "as_of": D("2024-03-01"), "mrr": 130.0, "seats": 5},
    ]


# --- features ---------------------------------------------------------------------

HISTORY = [
    # a: monthly base, renewed once, upgraded to an annual premium, then an add-on
    line("a", "base", "2023-01-01", "2023-02-01", 100, seats=10, period=1),
    line("a", "base", "2023-02-01", "2023-03-01", 100, seats=10, period=1),
    line("a", "premium", "2023-03-01", "2024-03-01", 200, seats=12, period=12),
    line("a", "addon", "2023-04-15", None, 50, period=1),
    # b: churned in July 2022, came back in January 2023 on an open-ended line
    line("b", "base", "2022-01-01", "2022-07-01", 80, seats=4, period=1),
    line("b", "base", "2023-01-01", None, 90, seats=4),
    # c: ended before the snapshot
    line("c", "base", "2023-01-01", "2023-05-01", 60, seats=2, period=1),
    # a line starting on as_of is not seen
    line("b", "addon", "2023-06-30", None, 500, seats=100, period=12),
]


def test_subscription_features_worked_by_hand(con):
    cal = calendar_table([D("2023-06-30")])
    got = {r["account_id"]: r for r in rows(con, subscription_features(subs(*HISTORY), cal))}
    assert set(got) == {"a", "b"}  # c is not active on 29 June: no row
    assert got["a"] == {
        "account_id": "a",
        "as_of": D("2023-06-30"),
        "mrr": 250.0,  # premium 200 + addon 50
        "seats": 12,  # the addon has no seats
        "n_products": 2,
        "main_product": "premium",
        "billing_period": 12,  # of premium, the largest line
        "days_to_next_renewal": (D("2024-03-01") - D("2023-06-30")).days,  # 245
        "tenure_days": 180,  # since 1 January
        "relationship_tenure_days": 180,
        "past_renewals": 1,  # base Feb renewed base Jan; premium replaced base (no renewal)
        "reactivations": 0,
        # 90 days earlier = 1 April: the state on 31 March was premium only (200, 12 seats)
        "mrr_change_pct_90d": 0.25,
        "seats_change_90d": 0,
        "new_products_90d": 1,  # addon first started 15 April, in [1 April, 30 June)
        # 180 days earlier = 1 January: nothing was in force on 31 December -> null
        "mrr_change_pct_180d": None,
        "seats_change_180d": None,
        "new_products_180d": 2,  # premium (1 March) and addon; base was the first purchase
    }
    b = got["b"]
    assert b["mrr"] == 90.0 and b["n_products"] == 1  # the 30 June addon is not seen
    assert b["days_to_next_renewal"] is None  # open-ended
    assert b["billing_period"] is None
    assert b["tenure_days"] == (D("2023-06-30") - D("2022-01-01")).days  # 545
    assert b["relationship_tenure_days"] == 180  # since the return on 1 January 2023
    assert b["reactivations"] == 1  # the July 2022 churn
    assert b["past_renewals"] == 0  # a return after a churn is not a renewal
    assert b["mrr_change_pct_90d"] == 0.0 and b["seats_change_90d"] == 0
    assert b["mrr_change_pct_180d"] is None
    assert b["new_products_90d"] == 0 and b["new_products_180d"] == 0


def test_feature_columns_follow_the_windows(con):
    cal = calendar_table([D("2023-06-30")])
    expr = subscription_features(subs(*HISTORY), cal, windows=(30,))
    assert expr.columns == ("account_id", "as_of", *feature_columns((30,)))
    assert "mrr_change_pct_30d" in expr.columns and "new_products_30d" in expr.columns


def test_churn_is_counted_as_past_only_after_its_grace_period(con):
    # given a churn on 1 March 2023 and a return on 1 April (31 days later)
    table = subs(
        line("a", "base", "2023-01-01", "2023-03-01", 100),
        line("a", "base", "2023-04-01", None, 100),
    )
    cal = calendar_table([D("2023-04-30")])
    assert rows(con, subscription_features(table, cal))[0]["reactivations"] == 1


# --- properties -------------------------------------------------------------------

ORIGIN = date(2023, 1, 1)
PRODUCTS = ("base", "premium", "addon")


@st.composite
def histories(draw, prefix="s", starts=st.integers(0, 300), max_lines=6):
    """Up to ``max_lines`` lines of accounts a and b; start days from ``starts``."""
    n = draw(st.integers(0, max_lines))
    out = []
    for i in range(n):
        start = draw(starts)
        length = draw(st.one_of(st.none(), st.integers(1, 200)))
        out.append(
            line(
                draw(st.sampled_from(("a", "b"))),
                draw(st.sampled_from(PRODUCTS)),
                ORIGIN + timedelta(days=start),
                None if length is None else ORIGIN + timedelta(days=start + length),
                draw(st.sampled_from((0, 10, 25, 100))),
                seats=draw(st.one_of(st.none(), st.integers(1, 20))),
                period=draw(st.sampled_from((None, 1, 12))),
                sid=f"{prefix}{i}",
            )
        )
    return out


def mrr_on(lines, account, day) -> float:
    return sum(
        r["mrr"]
        for r in lines
        if r["account_id"] == account and r["start_date"] <= day and (r["end_date"] is None or day < r["end_date"])
    )


def churns_by_definition(lines, grace_days, data_end) -> list[tuple[str, date]]:
    """Day by day: MRR goes from > 0 to 0 on d and stays 0 for the grace period, seen
    either before data_end or because the account demonstrably came back later."""
    grace = max(grace_days, 1)
    found = []
    for account in sorted({r["account_id"] for r in lines}):
        mine = [r for r in lines if r["account_id"] == account and r["mrr"] > 0]
        for k in range(1, 800):
            d = ORIGIN + timedelta(days=k)
            if mrr_on(mine, account, d - timedelta(days=1)) > 0 and all(
                mrr_on(mine, account, d + timedelta(days=j)) == 0 for j in range(grace)
            ):
                came_back = any(r["start_date"] > d for r in mine)
                if d + timedelta(days=grace) <= data_end or came_back:
                    found.append((account, d))
    return found


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=histories(),
    grace_days=st.sampled_from((0, 1, 7, 30)),
    data_end_day=st.integers(0, 700),
)
def test_churn_events_match_the_day_by_day_definition(con, lines, grace_days, data_end_day):
    data_end = ORIGIN + timedelta(days=data_end_day)
    got = [(r["account_id"], r["churn_date"]) for r in rows(con, churn_events(subs(*lines), grace_days, data_end))]
    assert got == churns_by_definition(lines, grace_days, data_end)


def shifted(lines, to: date) -> list[dict]:
    """The lines moved so that ORIGIN lands on ``to``."""
    move = to - ORIGIN
    return [
        {**r, "start_date": r["start_date"] + move, "end_date": r["end_date"] and r["end_date"] + move} for r in lines
    ]


@pytest.fixture(scope="module")
def features_on(con):
    """subscription_features over DuckDB tables `subs` and `cal`, compiled once by Ibis;
    calling it loads new rows into the tables and reruns the same SQL (fast examples)."""
    con.create_table("subs", schema=ibis.Schema.from_pyarrow(SCHEMA), overwrite=True)
    con.create_table("cal", schema=ibis.schema({"as_of": "date"}), overwrite=True)
    sql = ibis.to_sql(subscription_features(con.table("subs"), con.table("cal")), dialect="duckdb")

    def run(lines: list[dict], dates: list[date]) -> list[dict]:
        con.create_table("subs", pa.Table.from_pylist(lines, schema=SCHEMA), overwrite=True)
        con.create_table("cal", pa.table({"as_of": pa.array(dates, pa.date32())}), overwrite=True)
        out = con.raw_sql(str(sql)).to_arrow_table().to_pylist()
        return sorted(out, key=lambda r: tuple(str(v) for v in r.values()))

    return run


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    history=histories(prefix="p", max_lines=8),
    # other lines starting on as_of or up to 120 days after it (as_of itself often)
    other_future=histories(prefix="f", starts=st.one_of(st.just(0), st.integers(0, 120)), max_lines=4),
    data=st.data(),
)
def test_features_ignore_lines_starting_on_or_after_as_of(features_on, history, other_future, data):
    # given a history and an as_of (often a day on which some line starts or ends) ...
    edges = sorted({r["start_date"] for r in history} | {r["end_date"] for r in history if r["end_date"]})
    anyday = st.dates(ORIGIN, ORIGIN + timedelta(days=400))
    as_of = data.draw(st.one_of(st.sampled_from(edges), anyday) if edges else anyday, label="as_of")
    # ... and the same history with its lines starting on/after as_of removed or replaced
    past = [r for r in history if r["start_date"] < as_of]
    variants = {"original": history, "past": past, "replaced": past + shifted(other_future, as_of)}
    # when features are computed on each (one query: the variant prefixes the account)
    tagged = [
        {**r, "account_id": f"{name}:{r['account_id']}", "subscription_id": f"{name}:{r['subscription_id']}"}
        for name, lines in variants.items()
        for r in lines
    ]
    got = {name: [] for name in variants}
    for r in features_on(tagged, [as_of, as_of + timedelta(days=45)]):
        if r["as_of"] == as_of:
            name, account = r["account_id"].split(":")
            got[name].append({**r, "account_id": account})
    # then the snapshot rows at as_of are identical
    assert got["past"] == got["original"]
    assert got["replaced"] == got["original"]
