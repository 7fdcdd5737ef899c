"""The sample-workspace generator: determinism, the input data contract, and the realism
bands the rest of Account Radar relies on (churn, expansion, languages, coverage, signal
that predicts churn without giving it away)."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import tomllib
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from features.contract import TABLES
from features.sampledata import EVENT_KINDS, EVENT_TYPES, generate_workspace
from features.sampledata.text import expand
from features.sampledata.writer import arrow_schema

END = dt.date(2026, 10, 31)
YEARS = 3
START = pd.Timestamp(END) - pd.DateOffset(years=YEARS) + pd.Timedelta(days=1)
DATA_END = pd.Timestamp(END) + pd.Timedelta(days=1)  # first day after the window
GRACE = pd.Timedelta(days=30)
FAR = pd.Timestamp("2200-01-01")
PHRASES = Path(__file__).resolve().parents[2] / "features" / "sampledata" / "phrases"


# -- helpers ------------------------------------------------------------------------
def load(folder: Path, fmt: str = "parquet") -> dict[str, pd.DataFrame]:
    if fmt == "parquet":
        return {name: pd.read_parquet(folder / f"{name}.parquet") for name in TABLES}
    return {name: pd.read_csv(folder / f"{name}.csv", keep_default_na=False, na_values=[""]) for name in TABLES}


def file_hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def relationships(subs: pd.DataFrame) -> pd.DataFrame:
    """Subscription lines merged into relationships: lines within the grace period of the
    relationship so far continue it (DOMAIN 1)."""
    s = subs.assign(start=pd.to_datetime(subs.start_date), end=pd.to_datetime(subs.end_date).fillna(FAR))
    s = s.sort_values(["account_id", "start"]).reset_index(drop=True)
    reach = s.groupby("account_id").end.cummax().groupby(s.account_id).shift()
    s["rel"] = (reach.isna() | (s.start > reach + GRACE)).cumsum()
    return (
        s.groupby("rel")
        .agg(account_id=("account_id", "first"), start=("start", "min"), end=("end", "max"))
        .reset_index(drop=True)
    )


def churns(subs: pd.DataFrame) -> pd.DataFrame:
    rel = relationships(subs)
    return rel[rel.end < DATA_END].rename(columns={"end": "churn_date"})


def year_bounds(k: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    return START + pd.DateOffset(years=k), min(START + pd.DateOffset(years=k + 1), DATA_END)


def yearly_churn(subs: pd.DataFrame) -> list[float]:
    rel = relationships(subs)
    rates = []
    for k in range(YEARS):
        y0, y1 = year_bounds(k)
        live = rel[(rel.start <= y0) & (rel.end > y0)]
        rates.append(float((live.end < y1).sum() / len(live)))
    return rates


def mrr_on(subs: pd.DataFrame, day: pd.Timestamp) -> pd.Series:
    start, end = pd.to_datetime(subs.start_date), pd.to_datetime(subs.end_date).fillna(FAR)
    return subs[(start <= day) & (end > day)].groupby("account_id").mrr.sum()


def yearly_expansion(subs: pd.DataFrame) -> list[float]:
    """Share of accounts live at a year's start that expand during it (DOMAIN 1)."""
    start, end = pd.to_datetime(subs.start_date), pd.to_datetime(subs.end_date).fillna(FAR)
    shares = []
    for k in range(YEARS):
        y0, y1 = year_bounds(k)
        d2 = y1 - pd.Timedelta(days=1)
        m0, m1 = mrr_on(subs, y0), mrr_on(subs, d2)
        held = set(zip(subs.account_id[(start <= y0) & (end > y0)], subs["product"][(start <= y0) & (end > y0)]))
        new = subs[(start > y0) & (start <= d2)]
        new_product = {a for a, p in zip(new.account_id, new["product"]) if (a, p) not in held}
        m1 = m1.reindex(m0.index).fillna(0)
        grew = (m1 > 0) & ((m1 >= 1.1 * m0) | m0.index.isin(list(new_product)))
        shares.append(float(grew.mean()))
    return shares


def red_renewal_phrases() -> list[str]:
    out = []
    for lang in ("en", "fr", "it"):
        bank = tomllib.loads((PHRASES / f"{lang}.toml").read_text("utf-8"))
        for template in bank["signals"]["renewal_likelihood"]["red"]:
            out += [v.lower() for v in expand(template)]
    return sorted(set(out))


def monthly_snapshots(ws: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Month-end snapshots of live accounts: events per seat over the last 28 days and
    whether the account churns within 90 days."""
    con = duckdb.connect()
    subs = ws["subscriptions"].assign(end_date=pd.to_datetime(ws["subscriptions"].end_date).fillna(FAR))
    con.register("subs", subs)
    con.register("events", ws["usage_events"][["account_id", "occurred_at"]])
    con.register("churns", churns(ws["subscriptions"]))
    asofs = pd.date_range(START + pd.Timedelta(days=60), DATA_END - pd.Timedelta(days=91), freq="ME")
    con.register("asofs", pd.DataFrame({"as_of": asofs}))
    return con.execute("""
        with live as (
            select as_of, account_id,
                   sum(seats) filter (where product in ('base', 'premium')) as seats
            from asofs join subs on start_date <= as_of and end_date > as_of group by all),
        use as (
            select as_of, account_id, count(*) as events
            from asofs join events
              on occurred_at < as_of and occurred_at >= as_of - interval 28 day group by all),
        lab as (
            select distinct as_of, account_id from asofs join churns
              on churn_date >= as_of and churn_date < as_of + interval 90 day)
        select live.as_of, live.account_id, coalesce(events, 0) / greatest(seats, 1) as per_seat,
               lab.account_id is not null as churned
        from live left join use using (as_of, account_id) left join lab using (as_of, account_id)
    """).df()


def roc_auc(score: np.ndarray, label: np.ndarray) -> float:
    ranks = pd.Series(score).rank().to_numpy()
    pos = label.sum()
    return float((ranks[label].sum() - pos * (pos + 1) / 2) / (pos * (len(label) - pos)))


# -- fixtures -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("small")
    steps: list[str] = []
    counts = generate_workspace(out, accounts=400, years=YEARS, seed=11, end=END, progress=steps.append)
    return {"dir": out, "counts": counts, "steps": steps, "tables": load(out)}


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    out = tmp_path_factory.mktemp("default")
    counts = generate_workspace(out)
    return {"dir": out, "counts": counts, "tables": load(out)}


@pytest.fixture(params=["small", "default"])
def sample(request):
    return request.getfixturevalue(request.param)


# -- determinism and API ------------------------------------------------------------
def test_same_seed_writes_identical_files_and_another_seed_does_not(tmp_path):
    a = generate_workspace(tmp_path / "a", accounts=40, years=1, seed=3)
    b = generate_workspace(tmp_path / "b", accounts=40, years=1, seed=3)
    generate_workspace(tmp_path / "c", accounts=40, years=1, seed=4)
    assert a == b
    assert file_hashes(tmp_path / "a") == file_hashes(tmp_path / "b")
    differing = {k for k, v in file_hashes(tmp_path / "c").items() if file_hashes(tmp_path / "a")[k] != v}
    assert differing == {f"{name}.parquet" for name in TABLES}


def test_returns_row_counts_and_reports_each_table_as_a_step(small):
    assert list(small["counts"]) == list(TABLES)
    assert {n: len(df) for n, df in small["tables"].items()} == small["counts"]
    assert set(small["steps"]) == set(TABLES)
    assert all(n > 0 for n in small["counts"].values())


def test_csv_format_writes_the_same_tables(tmp_path):
    counts = generate_workspace(tmp_path / "p", accounts=30, years=1, seed=5)
    assert generate_workspace(tmp_path / "c", accounts=30, years=1, seed=5, fmt="csv") == counts
    csv, parquet = load(tmp_path / "c", "csv"), load(tmp_path / "p")
    for name, table in TABLES.items():
        assert list(csv[name].columns) == table.column_names
        assert len(csv[name]) == counts[name]
        for col in table.columns:
            if col.type == "timestamp":
                assert (pd.to_datetime(csv[name][col.name]).fillna(FAR) == parquet[name][col.name].fillna(FAR)).all()
    open_lines = parquet["subscriptions"].end_date.isna().sum()
    assert csv["subscriptions"].end_date.isna().sum() == open_lines


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match="format"):
        generate_workspace(tmp_path, accounts=5, years=1, fmt="xlsx")


# -- the input data contract --------------------------------------------------------
def test_parquet_schemas_are_the_contract(small):
    for name, table in TABLES.items():
        schema = pq.read_schema(small["dir"] / f"{name}.parquet")
        assert schema.names == table.column_names
        assert [f.type for f in schema] == [f.type for f in arrow_schema(table)]


def test_values_respect_the_contract(small):
    for name, table in TABLES.items():
        df = small["tables"][name]
        for col in table.columns:
            values = df[col.name].dropna()
            if getattr(col, "words", ()):  # written as the word a billing export holds: a known one
                values = values.map(dict(col.words))
                assert values.notna().all(), (name, col.name)
            if col.required:
                assert df[col.name].notna().all(), (name, col.name)
            if col.allowed:
                assert set(values) <= set(col.allowed), (name, col.name)
            if col.min is not None:
                assert (values >= col.min).all(), (name, col.name)
            if col.max is not None:
                assert (values <= col.max).all(), (name, col.name)
        for later, earlier in table.ordered:
            both = df[[later, earlier]].dropna()
            assert (both[later] >= both[earlier]).all(), (name, later, earlier)
        if table.key:
            assert df[table.key].is_unique, name


def test_every_account_reference_exists_and_times_lie_in_the_window(small):
    t = small["tables"]
    ids = set(t["accounts"].account_id)
    for name, table in TABLES.items():
        assert set(t[name].account_id) <= ids, name
        if table.time_column:
            times = t[name][table.time_column]
            assert times.min() >= START and times.max() < DATA_END, name
    assert (t["support_tickets"].resolved_at.dropna() < DATA_END).all()


def test_usage_happens_only_while_subscribed(small):
    con = duckdb.connect()
    con.register("e", small["tables"]["usage_events"])
    con.register("s", small["tables"]["subscriptions"])
    orphans = con.execute("""
        select count(*) from e where not exists (
            select 1 from s where s.account_id = e.account_id
              and s.start_date <= e.occurred_at::date
              and (s.end_date is null or s.end_date > e.occurred_at::date))""").fetchone()[0]
    assert orphans == 0


def test_accounts_segments_names_and_csm_books(small):
    acc = small["tables"]["accounts"]
    assert set(acc.segment) == {"smb", "mid_market", "enterprise"}
    assert acc.name.is_unique and acc.account_id.str.fullmatch(r"A\d{5}").all()
    assert 8 <= acc.csm_owner.nunique() <= 12
    book = acc.groupby("csm_owner").agg(n=("account_id", "size"), ent=("segment", lambda s: (s == "enterprise").mean()))
    assert book[book.ent > 0.5].n.mean() < book[book.ent <= 0.5].n.mean()
    assert (acc.created_at < START).mean() > 0.2  # customers from before the window
    assert (acc.created_at > START + pd.Timedelta(days=2 * 365)).any()  # and still arriving


def test_subscription_lines_tell_a_commercial_story(small):
    subs = small["tables"]["subscriptions"]
    assert set(subs.billing_period) == {"month", "year"}
    assert {"base", "premium", "addon_analytics", "addon_sso", "addon_api"} <= set(subs["product"])
    assert subs.end_date.isna().any() and subs.end_date.notna().mean() > 0.5
    first = subs.groupby("account_id").start_date.min()
    created = small["tables"]["accounts"].set_index("account_id").created_at.dt.normalize()
    assert (pd.to_datetime(first) == created.reindex(first.index)).all()
    seg = small["tables"]["accounts"].set_index("account_id").segment
    seats = subs[subs["product"].isin(["base", "premium"])].groupby("account_id").seats.max()
    by_segment = seats.groupby(seg.reindex(seats.index)).median()
    assert by_segment["smb"] < by_segment["mid_market"] < by_segment["enterprise"]
    assert (relationships(subs).groupby("account_id").size() > 1).any()  # reactivations


def test_surveys_score_on_their_scales(small):
    fb = small["tables"]["feedback"]
    nps = fb[fb.channel == "nps_survey"].score
    csat = fb[fb.channel == "csat_survey"].score
    assert nps.between(0, 10).all() and (nps == nps.round()).all() and nps.nunique() >= 9
    assert csat.between(1, 5).all() and csat.nunique() == 5
    assert fb[~fb.channel.isin(["nps_survey", "csat_survey"])].score.isna().all()


# -- realism bands (the small sample must hold them too) -----------------------------
def test_yearly_logo_churn_is_plausible(sample):
    rates = yearly_churn(sample["tables"]["subscriptions"])
    assert all(0.08 <= r <= 0.25 for r in rates), rates


def test_a_visible_share_of_accounts_expands_each_year(sample):
    shares = yearly_expansion(sample["tables"]["subscriptions"])
    assert all(0.10 <= s <= 0.5 for s in shares), shares


def test_texts_in_three_languages_and_some_without_a_code(sample):
    fb = sample["tables"]["feedback"]
    texts = fb[fb.text.notna()]
    assert 0.2 <= texts.language.isna().mean() <= 0.4
    shares = texts.language.value_counts(normalize=True)  # coded rows sample all texts
    assert shares["en"] > 0.6 and shares["fr"] >= 0.03 and shares["it"] >= 0.03
    french = texts[texts.language == "fr"].text.str.contains(r"\b(?:nous|le|la|les|de|des)\b|[dl]'")
    assert french.mean() > 0.9
    sentences = texts.text.str.count(r"[.!?]") + ~texts.text.str.contains(r"[.!?]$")
    assert sentences.median() >= 2


def test_most_accounts_have_tickets_and_surveys(sample):
    t = sample["tables"]
    n = len(t["accounts"])
    surveys = t["feedback"][t["feedback"].channel.isin(["nps_survey", "csat_survey"])]
    assert t["support_tickets"].account_id.nunique() / n >= 0.7
    assert surveys.account_id.nunique() / n >= 0.7


def test_about_twenty_event_types_with_weekly_rhythm(sample):
    ev = sample["tables"]["usage_events"]
    assert set(ev.event_type) == set(EVENT_TYPES) and 18 <= len(EVENT_TYPES) <= 22
    assert set(EVENT_TYPES) == set(itertools.chain(*EVENT_KINDS.values()))
    assert (ev.occurred_at.dt.day_of_week >= 5).mean() < 0.2
    assert (ev.quantity[ev.event_type == "api_call"] > 1).mean() > 0.5
    assert (ev.quantity[ev.event_type == "login"] == 1).all()


def test_default_size_has_millions_of_events(default):
    assert 1_500_000 <= default["counts"]["usage_events"] <= 3_000_000
    assert len(default["tables"]["accounts"]) == 1500


# -- signal without leakage ----------------------------------------------------------
def test_usage_predicts_churn_but_not_trivially(sample):
    snaps = monthly_snapshots(sample["tables"])
    auc = roc_auc(-snaps.per_seat.to_numpy(), snaps.churned.to_numpy())
    assert 0.55 <= auc <= 0.9, auc


def test_expanding_accounts_had_adopted_more(sample):
    t = sample["tables"]
    subs, ev = t["subscriptions"], t["usage_events"]
    start, end = pd.to_datetime(subs.start_date), pd.to_datetime(subs.end_date).fillna(FAR)
    for k in range(1, YEARS):  # the first year has no usage history before it
        y0, y1 = year_bounds(k)
        live = subs[(start <= y0) & (end > y0)]
        seats = live[live["product"].isin(["base", "premium"])].groupby("account_id").seats.sum()
        m0 = live.groupby("account_id").mrr.sum()
        m1 = mrr_on(subs, y1 - pd.Timedelta(days=1)).reindex(m0.index).fillna(0)
        recent = ev[(ev.occurred_at < y0) & (ev.occurred_at >= y0 - pd.Timedelta(days=28))]
        users = recent.groupby("account_id").user_id.nunique().reindex(m0.index).fillna(0)
        adoption = users / seats
        grew = m1 >= 1.1 * m0
        assert adoption[grew].mean() > adoption[~grew].mean() + 0.05, k


def test_churners_were_less_happy_beforehand(sample):
    t = sample["tables"]
    gone = churns(t["subscriptions"])
    nps = t["feedback"][t["feedback"].channel == "nps_survey"]
    joined = nps.merge(gone, on="account_id", how="left")
    before = (joined.churn_date > joined.submitted_at) & (
        joined.churn_date <= joined.submitted_at + pd.Timedelta(days=180)
    )
    assert joined[before].score.mean() < joined[~before].score.mean() - 0.5


def test_cancellation_cues_are_probabilistic(sample):
    """Red renewal cues are more common before churn, yet most who voice one stay and
    many churners never voice one: the text is evidence, not the label."""
    t = sample["tables"]
    phrases = red_renewal_phrases()
    texts = (
        pd.concat(
            [
                t["feedback"][["account_id", "submitted_at", "text"]].rename(columns={"submitted_at": "when"}),
                t["support_tickets"][["account_id", "opened_at", "body"]].rename(
                    columns={"opened_at": "when", "body": "text"}
                ),
            ]
        )
        .dropna()
        .reset_index(drop=True)
    )
    texts["tid"] = texts.index
    texts["cue"] = [any(p in s for p in phrases) for s in texts.text.str.lower()]
    gone = churns(t["subscriptions"])
    pairs = texts.merge(gone, on="account_id", how="left")
    pairs["soon"] = (pairs.churn_date > pairs.when) & (pairs.churn_date <= pairs.when + pd.Timedelta(days=180))
    per_text = pairs.groupby("tid").agg(cue=("cue", "first"), soon=("soon", "any"))
    cue_rate_before_churn = per_text[per_text.soon].cue.mean()
    cue_rate_otherwise = per_text[~per_text.soon].cue.mean()
    assert cue_rate_before_churn > 1.5 * cue_rate_otherwise
    assert per_text[per_text.cue].soon.mean() < 0.8  # most who voice a cue do not churn
    gone = gone[gone.churn_date >= START + pd.Timedelta(days=180)]
    warned = gone.merge(texts[texts.cue], on="account_id", how="left")
    warned["w"] = (warned.when < warned.churn_date) & (warned.when >= warned.churn_date - pd.Timedelta(days=180))
    silent = 1 - warned.groupby(["account_id", "churn_date"]).w.any().mean()
    assert silent > 0.2
