"""Labels of a snapshot: churned, expanded, renewal_in_horizon, churned_by_renewal (with
next_renewal and label_end_by_renewal), and when they are unknown.

Default settings: grace 30 days, horizon 90 days, expansion at +10% MRR, max lead 400
days. The snapshot is taken at as_of = 2024-01-31, so the label window is [31 Jan,
30 Apr 2024) and the labels are known once data reach as_of + 90 + 30 - 1 = 29 May 2024.
The window of churned_by_renewal runs to T = max(as_of + 90, next renewal + 30), at most
as_of + 400 = 6 March 2025, and is known once data reach T + 29. Each account of a case
is one small history; the expected answer is worked out next to it.
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
from features.labels import build_labels
from radar.settings import DomainSettings

D = date.fromisoformat
AS_OF = D("2024-01-31")
LATE = D("2025-01-01")  # a data end long after every label window
DEFAULTS = DomainSettings()
SCHEMA = pa.schema(
    [
        ("subscription_id", pa.string()),
        ("account_id", pa.string()),
        ("product", pa.string()),
        ("start_date", pa.date32()),
        ("end_date", pa.date32()),
        ("mrr", pa.float64()),
        ("seats", pa.int64()),
        ("billing_period", pa.int64()),
    ]
)
_ids = itertools.count()


def line(account, product, start, end, mrr, sid=None) -> dict:
    return {
        "subscription_id": sid or f"s{next(_ids)}",
        "account_id": account,
        "product": product,
        "start_date": D(start) if isinstance(start, str) else start,
        "end_date": D(end) if isinstance(end, str) else end,
        "mrr": float(mrr),
        "seats": None,
        "billing_period": None,
    }


def subs(*lines: dict) -> ibis.Table:
    return ibis.memtable(pa.Table.from_pylist(list(lines), schema=SCHEMA))


@pytest.fixture(scope="module")
def con():
    return ibis.duckdb.connect()


def labels(con, lines, as_of=AS_OF, data_end=LATE, domain=DEFAULTS) -> dict[str, tuple]:
    """account_id -> (churned, expanded, renewal_in_horizon) at one as_of."""
    expr = build_labels(subs(*lines), calendar_table([as_of]), domain, data_end)
    return {
        r["account_id"]: (r["churned"], r["expanded"], r["renewal_in_horizon"])
        for r in con.to_pyarrow(expr).to_pylist()
    }


def by_renewal(con, lines, as_of=AS_OF, data_end=LATE, domain=DEFAULTS) -> dict[str, tuple]:
    """account_id -> (churned, churned_by_renewal, next_renewal, label_end_by_renewal) at one as_of."""
    expr = build_labels(subs(*lines), calendar_table([as_of]), domain, data_end)
    return {
        r["account_id"]: (r["churned"], r["churned_by_renewal"], r["next_renewal"], r["label_end_by_renewal"])
        for r in con.to_pyarrow(expr).to_pylist()
    }


def test_schema(con):
    expr = build_labels(subs(line("a", "base", "2023-01-01", None, 10)), calendar_table([AS_OF]), DEFAULTS, LATE)
    assert expr.schema() == ibis.schema(
        {
            "account_id": "string",
            "as_of": "date",
            "churned": "int8",
            "expanded": "int8",
            "churned_by_renewal": "int8",
            "renewal_in_horizon": "boolean",
            "next_renewal": "date",
            "label_end_by_renewal": "date",
        }
    )


def test_churn_inside_the_horizon(con):
    # given a line ending 1 March with nothing after: MRR is 0 from 1 March on
    got = labels(con, [line("a", "base", "2023-06-01", "2024-03-01", 100)])
    # then churned (1 March is in the window), not expanded, and a renewal was due
    assert got == {"a": (1, 0, True)}


@pytest.mark.parametrize(
    ("end", "expected"),
    [
        ("2024-04-29", (1, 0, True)),  # last day of the window: churn inside
        ("2024-04-30", (0, 0, False)),  # as_of + 90: the next snapshot's business
        ("2024-01-31", (1, 0, True)),  # ends on as_of itself: in force the day before, churns that day
    ],
)
def test_window_bounds(con, end, expected):
    assert labels(con, [line("a", "base", "2023-06-01", end, 100)]) == {"a": expected}


def test_monthly_renewals_are_no_churn(con):
    # given back-to-back monthly lines through 2024 at a flat 100
    monthly = [
        line("a", "base", date(2023, m, 1), date(2024 if m == 12 else 2023, m % 12 + 1, 1), 100) for m in range(1, 13)
    ]
    monthly += [line("a", "base", date(2024, m, 1), date(2024, m + 1, 1), 100) for m in range(1, 12)]
    # then no churn, no expansion (flat), and the January line is due on 1 February
    assert labels(con, monthly) == {"a": (0, 0, True)}


def test_annual_renewal_is_no_churn(con):
    got = labels(
        con,
        [
            line("a", "base", "2023-03-15", "2024-03-15", 500),
            line("a", "base", "2024-03-15", "2025-03-15", 500),
        ],
    )
    assert got == {"a": (0, 0, True)}


def test_lapse_shorter_than_grace_is_no_churn(con):
    # given a line ending 1 March and a new one on 20 March: 19 zero days < 30
    got = labels(
        con,
        [
            line("a", "base", "2023-06-01", "2024-03-01", 100),
            line("a", "base", "2024-03-20", None, 100),
        ],
    )
    assert got == {"a": (0, 0, True)}


@pytest.mark.parametrize(
    ("premium_mrr", "expanded"),
    [(120, 1), (110, 1), (105, 0)],  # +20%, exactly +10% (expansion), +5% (not enough)
)
def test_upgrade_is_expansion_when_mrr_grows_enough(con, premium_mrr, expanded):
    # given base until 1 March, replaced by premium from 1 March: a plan change, so only
    # the MRR rule applies (premium_mrr vs 100 on 30 January)
    got = labels(
        con,
        [
            line("a", "base", "2023-06-01", "2024-03-01", 100),
            line("a", "premium", "2024-03-01", None, premium_mrr),
        ],
    )
    assert got == {"a": (0, expanded, True)}


def test_downgrade_is_neither_churn_nor_expansion(con):
    # given premium replaced by a cheaper plan: premium is not in force when base starts
    got = labels(
        con,
        [
            line("a", "premium", "2023-06-01", "2024-03-01", 200),
            line("a", "base", "2024-03-01", None, 150),
        ],
    )
    assert got == {"a": (0, 0, True)}


def test_add_on_is_expansion_even_when_mrr_grows_less_than_ten_percent(con):
    # given an open-ended base at 100 and a 5-per-month add-on from 10 March (+5%)
    got = labels(
        con,
        [
            line("a", "base", "2023-06-01", None, 100),
            line("a", "addon", "2024-03-10", None, 5),
        ],
    )
    # then expanded (a product it did not have started in the window); nothing is due
    assert got == {"a": (0, 1, False)}


def test_add_on_starting_on_as_of_counts_for_the_label(con):
    # a line starting on as_of is not seen by the features, so it belongs to the label
    got = labels(
        con,
        [
            line("a", "base", "2023-06-01", None, 100),
            line("a", "addon", "2024-01-31", None, 5),
        ],
    )
    assert got == {"a": (0, 1, False)}


def test_add_on_that_does_not_survive_still_counts(con):
    # an add-on started and stopped within the window is still a cross-sell
    got = labels(
        con,
        [
            line("a", "base", "2023-06-01", None, 100),
            line("a", "addon", "2024-02-01", "2024-03-01", 5),
        ],
    )
    assert got == {"a": (0, 1, False)}


def test_churn_then_return_with_more_mrr_is_churn_not_expansion(con):
    # given a churn on 1 February and a return on 15 March (43 days) at twice the MRR
    got = labels(
        con,
        [
            line("a", "base", "2023-06-01", "2024-02-01", 100),
            line("a", "premium", "2024-03-15", None, 200),
        ],
    )
    assert got == {"a": (1, 0, True)}


def test_several_lines_one_ends_the_other_continues(con):
    # given base (open) + addon ending 1 March: MRR 130 -> 100, no churn, no expansion
    got = labels(
        con,
        [
            line("a", "base", "2023-06-01", None, 100),
            line("a", "addon", "2023-09-01", "2024-03-01", 30),
        ],
    )
    assert got == {"a": (0, 0, True)}


def test_open_ended_line_is_never_due_and_never_churns(con):
    assert labels(con, [line("a", "base", "2023-06-01", None, 100)]) == {"a": (0, 0, False)}


def test_accounts_not_active_at_as_of_get_no_row(con):
    got = labels(
        con,
        [
            line("active", "base", "2023-06-01", None, 100),
            line("later", "base", "2024-03-01", None, 100),  # starts after as_of
            line("on_as_of", "base", "2024-01-31", None, 100),  # starts on as_of: not yet seen
            line("gone", "base", "2023-01-01", "2023-12-01", 100),  # churned before
            line("free", "trial", "2023-06-01", None, 0),  # MRR 0 is not active
        ],
    )
    assert set(got) == {"active"}


@pytest.mark.parametrize(
    ("data_end", "known"),
    [
        (AS_OF + timedelta(days=118), False),  # a churn on 29 April could not be confirmed
        (AS_OF + timedelta(days=119), True),  # 29 April + 30 zero days are all observed
    ],
)
def test_labels_are_unknown_when_the_data_end_too_early(con, data_end, known):
    lines = [
        line("a", "base", "2023-06-01", "2024-03-01", 100),  # churns inside the window
        line("b", "base", "2023-06-01", None, 100),
    ]
    got = labels(con, lines, data_end=data_end)
    if known:
        assert got == {"a": (1, 0, True), "b": (0, 0, False)}
    else:  # the same rule for every account; renewal_in_horizon is known at as_of
        assert got == {"a": (None, None, True), "b": (None, None, False)}


def test_settings_change_the_window_and_the_threshold(con):
    domain = DomainSettings(grace_days=0, horizon_days=30, expansion_min_pct=0.5)
    lines = [
        line("a", "base", "2023-06-01", "2024-03-05", 100),  # churn after the 30-day window
        line("b", "base", "2023-06-01", "2024-02-10", 100),  # upgraded by +40% < 50%
        line("b", "premium", "2024-02-10", None, 140),
    ]
    # with grace 0 a churn needs one zero day, so labels are known from as_of + 30
    assert labels(con, lines, data_end=AS_OF + timedelta(days=29), domain=domain)["a"][0] is None
    assert labels(con, lines, data_end=AS_OF + timedelta(days=30), domain=domain) == {
        "a": (0, 0, False),
        "b": (0, 0, True),
    }


# --- churned_by_renewal: churn by the next renewal (+ grace), at most max_lead_days ahead ---


def test_annual_contract_renewing_in_eight_months_then_churning(con):
    # given an annual contract ending 1 October 2024 (8 months after as_of), not renewed
    got = by_renewal(con, [line("a", "base", "2023-10-01", "2024-10-01", 500)])
    # then no churn within 90 days, but a churn by the renewal: T = 1 Oct + 30 days = 31 Oct
    assert got == {"a": (0, 1, D("2024-10-01"), D("2024-10-31"))}


def test_annual_contract_renewed_on_time_is_no_churn_by_renewal(con):
    got = by_renewal(
        con,
        [
            line("a", "base", "2023-10-01", "2024-10-01", 500),
            line("a", "base", "2024-10-01", "2025-10-01", 500),
        ],
    )
    assert got == {"a": (0, 0, D("2024-10-01"), D("2024-10-31"))}


@pytest.mark.parametrize(
    ("restart", "expected"),
    [
        ("2024-10-20", 0),  # 19 days without a contract < grace 30: a late renewal, no churn
        ("2024-10-31", 1),  # 30 days without: a churn on 1 October (then a return)
    ],
)
def test_renewal_followed_by_a_continuation_within_grace_is_no_churn(con, restart, expected):
    got = by_renewal(
        con,
        [
            line("a", "base", "2023-10-01", "2024-10-01", 500),
            line("a", "base", restart, None, 500),
        ],
    )
    assert got == {"a": (0, expected, D("2024-10-01"), D("2024-10-31"))}


def test_a_churn_within_grace_after_the_renewal_counts(con):
    # given the annual plan lapsing on 1 October and an add-on running to 15 October: the
    # account leaves on 15 October, inside [as_of, renewal + 30 days)
    got = by_renewal(
        con,
        [
            line("a", "base", "2023-10-01", "2024-10-01", 500),
            line("a", "addon", "2023-11-15", "2024-10-15", 50),
        ],
    )
    assert got == {"a": (0, 1, D("2024-10-01"), D("2024-10-31"))}


def test_monthly_contract_looks_as_far_as_the_horizon(con):
    # given monthly lines from January 2023: the next renewal is 1 February, and
    # 1 February + 30 days < as_of + 90, so T = as_of + 90 and both labels agree
    def monthly(account, last_month):
        return [
            line(
                account,
                "base",
                date(2023 + (m - 1) // 12, (m - 1) % 12 + 1, 1),
                date(2023 + m // 12, m % 12 + 1, 1),
                100,
            )
            for m in range(1, last_month + 1)
        ]

    got = by_renewal(con, [*monthly("stays", 24), *monthly("leaves_april", 15), *monthly("leaves_june", 17)])
    horizon_end = D("2024-04-30")
    assert got == {
        "stays": (0, 0, D("2024-02-01"), horizon_end),
        "leaves_april": (1, 1, D("2024-02-01"), horizon_end),  # last line ends 1 April
        "leaves_june": (0, 0, D("2024-02-01"), horizon_end),  # 1 June: after the horizon, and after T
    }


def test_open_ended_lines_use_the_horizon(con):
    got = by_renewal(
        con,
        [
            line("open", "base", "2023-06-01", None, 100),
            # a line starting on as_of is not seen at as_of: its end is no known renewal
            line("open", "addon", "2024-01-31", "2024-03-01", 10),
        ],
    )
    assert got == {"open": (0, 0, None, D("2024-04-30"))}


def test_open_ended_and_fixed_lines_renew_at_the_fixed_end(con):
    got = by_renewal(
        con,
        [
            line("a", "base", "2023-06-01", None, 100),
            line("a", "addon", "2023-06-01", "2024-09-01", 10),
        ],
    )
    # the add-on's end is the next renewal; the open base keeps the account: no churn
    assert got == {"a": (0, 0, D("2024-09-01"), D("2024-10-01"))}


def test_a_line_ending_on_as_of_is_a_renewal_that_day(con):
    got = by_renewal(con, [line("a", "base", "2023-01-31", "2024-01-31", 100)])
    assert got == {"a": (1, 1, AS_OF, D("2024-04-30"))}


@pytest.mark.parametrize(
    ("max_lead_days", "expected"),
    [
        (400, (0, 0, D("2025-06-01"), D("2025-03-06"))),  # capped at as_of + 400: the churn is later
        (600, (0, 1, D("2025-06-01"), D("2025-07-01"))),  # renewal + 30 days within the cap
        (90, (0, 0, D("2025-06-01"), D("2024-04-30"))),  # a cap at the horizon: churned_by_renewal = churned
    ],
)
def test_the_window_is_capped_at_max_lead_days(con, max_lead_days, expected):
    # given a two-year contract ending 1 June 2025, not renewed
    domain = DomainSettings(max_lead_days=max_lead_days)
    got = by_renewal(con, [line("a", "base", "2023-06-01", "2025-06-01", 100)], data_end=D("2026-01-01"), domain=domain)
    assert got == {"a": expected}


@pytest.mark.parametrize(
    ("data_end", "known"),
    [
        (D("2024-11-28"), False),  # a churn on 30 October (T - 1) could not be confirmed yet
        (D("2024-11-29"), True),  # T + 29: 30 October + 30 zero days are all observed
    ],
)
def test_churned_by_renewal_is_unknown_near_the_data_end(con, data_end, known):
    lines = [
        line("annual", "base", "2023-10-01", "2024-10-01", 500),  # T = 31 October
        line("open", "base", "2023-06-01", None, 100),  # T = as_of + 90: known long before
    ]
    got = by_renewal(con, lines, data_end=data_end)
    assert got["open"] == (0, 0, None, D("2024-04-30"))
    assert got["annual"] == (0, 1 if known else None, D("2024-10-01"), D("2024-10-31"))


def test_max_lead_days_cannot_be_shorter_than_the_horizon():
    with pytest.raises(ValueError, match="max_lead_days"):
        DomainSettings(horizon_days=120, max_lead_days=100)


# --- property: the labels agree with a day-by-day reading of their definition -------

ORIGIN = date(2023, 1, 1)


@st.composite
def histories(draw, max_lines=6):
    out = []
    for i in range(draw(st.integers(0, max_lines))):
        start = draw(st.integers(0, 300))
        length = draw(st.one_of(st.none(), st.integers(1, 200)))
        out.append(
            line(
                draw(st.sampled_from(("a", "b"))),
                draw(st.sampled_from(("base", "premium", "addon"))),
                ORIGIN + timedelta(days=start),
                None if length is None else ORIGIN + timedelta(days=start + length),
                draw(st.sampled_from((0, 1, 10, 11, 25, 100))),
                sid=f"s{i}",
            )
        )
    return out


def in_force(r, day) -> bool:
    return r["mrr"] > 0 and r["start_date"] <= day and (r["end_date"] is None or day < r["end_date"])


def expected_labels(lines, as_of, domain, data_end) -> dict[str, tuple]:
    grace, h = max(domain.grace_days, 1), domain.horizon_days
    day = timedelta(days=1)
    out = {}
    for account in sorted({r["account_id"] for r in lines}):
        mine = [r for r in lines if r["account_id"] == account]

        def mrr(d, mine=mine):
            return sum(r["mrr"] for r in mine if in_force(r, d))

        eve = as_of - day
        if mrr(eve) == 0:
            continue
        churned = any(
            mrr(d - day) > 0 and all(mrr(d + j * day) == 0 for j in range(grace))
            for d in (as_of + k * day for k in range(h))
        )
        had = {r["product"] for r in mine if in_force(r, eve)}
        add_on = any(
            r["mrr"] > 0
            and r["product"] not in had
            and as_of <= r["start_date"] < as_of + h * day
            and all(any(q["product"] == p and in_force(q, r["start_date"]) for q in mine) for p in had)
            for r in mine
        )
        grew = mrr(as_of + (h - 1) * day) - mrr(eve) >= mrr(eve) * domain.expansion_min_pct - 1e-6
        due = any(in_force(r, eve) and r["end_date"] is not None and r["end_date"] < as_of + h * day for r in mine)
        known = as_of + (h + grace - 1) * day <= data_end
        ends = [r["end_date"] for r in mine if in_force(r, eve) and r["end_date"] is not None]
        renewal = min(ends) if ends else None
        end = window_end(as_of, renewal, domain)
        by_renewal = any(
            mrr(d - day) > 0 and all(mrr(d + j * day) == 0 for j in range(grace))
            for d in (as_of + k * day for k in range((end - as_of).days))
        )
        known_by_renewal = end + (grace - 1) * day <= data_end
        out[account] = (
            int(churned) if known else None,
            int(not churned and (grew or add_on)) if known else None,
            due,
            int(by_renewal) if known_by_renewal else None,
            renewal,
            end,
        )
    return out


def window_end(as_of, renewal, domain) -> date:
    """T of churned_by_renewal, read off its definition."""
    horizon_end = as_of + timedelta(days=domain.horizon_days)
    if renewal is None:
        return horizon_end
    after_grace = renewal + timedelta(days=max(domain.grace_days, 1))
    return min(max(horizon_end, after_grace), as_of + timedelta(days=domain.max_lead_days))


def all_labels(con, lines, as_of, data_end, domain) -> dict[str, tuple]:
    expr = build_labels(subs(*lines), calendar_table([as_of]), domain, data_end)
    cols = ("churned", "expanded", "renewal_in_horizon", "churned_by_renewal", "next_renewal", "label_end_by_renewal")
    return {r["account_id"]: tuple(r[c] for c in cols) for r in con.to_pyarrow(expr).to_pylist()}


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=histories(),
    domain=st.builds(
        DomainSettings,
        grace_days=st.sampled_from((0, 1, 7, 30)),
        horizon_days=st.sampled_from((10, 30, 90)),
        expansion_min_pct=st.sampled_from((0.0, 0.1, 0.5)),
        max_lead_days=st.sampled_from((90, 150, 400)),
    ),
    data=st.data(),
)
def test_labels_match_the_day_by_day_definition(con, lines, domain, data):
    # as_of often on a day a line starts or ends (or a horizon before), data_end often
    # right at the edge of knowing the labels
    grace = max(domain.grace_days, 1)
    edges = sorted(
        {r["start_date"] for r in lines}
        | {r["end_date"] for r in lines if r["end_date"]}
        | {r["start_date"] - timedelta(days=domain.horizon_days) for r in lines}
        # as_of where the renewal + grace meets the horizon or the cap
        | {
            r["end_date"] + timedelta(days=grace - n)
            for r in lines
            if r["end_date"]
            for n in (domain.horizon_days, domain.max_lead_days)
        }
    )
    anyday = st.dates(ORIGIN, ORIGIN + timedelta(days=400))
    as_of = data.draw(st.one_of(st.sampled_from(edges), anyday) if edges else anyday, label="as_of")
    edge = as_of + timedelta(days=domain.horizon_days + grace - 1)
    # the data end right at the edge of knowing either label of some account
    ends = {v[5] + timedelta(days=grace - 1) for v in expected_labels(lines, as_of, domain, date.max).values()}
    data_end = data.draw(
        st.one_of(
            st.sampled_from(sorted({d + timedelta(days=k) for d in ends | {edge} for k in (-1, 0)})),
            st.dates(ORIGIN, ORIGIN + timedelta(days=900)),
        ),
        label="data_end",
    )
    assert all_labels(con, lines, as_of, data_end, domain) == expected_labels(lines, as_of, domain, data_end)
