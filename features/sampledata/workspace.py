"""`generate_workspace`: runs the generative story step by step and writes one file per
contract table. Each step draws from its own child of one seed sequence, so a seed
fixes every byte written. `product` picks the sample product (`PRODUCTS`: the default
one, or `ledgerly` with its own vocabulary, terms, story and export end)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from features.contract import TABLES
from features.sampledata.accounts import SEGMENTS, Accounts, draw_accounts
from features.sampledata.feedback import feedback_rows
from features.sampledata.ledgerly import LEDGERLY
from features.sampledata.lifecycle import simulate
from features.sampledata.products import RADAR, Product
from features.sampledata.story import HealthProcess, draw_incidents
from features.sampledata.subscriptions import subscription_rows
from features.sampledata.support import ticket_rows
from features.sampledata.text import Composer, PhraseBank
from features.sampledata.timeline import Window, to_timestamps
from features.sampledata.touchpoints import qbr_schedule, touchpoint_rows
from features.sampledata.usage import usage_chunks
from features.sampledata.writer import FORMATS, write_table

_STREAMS = (
    "accounts",
    "incidents",
    "health",
    "lifecycle",
    "usage",
    "support",
    "qbr",
    "touchpoints",
    "feedback",
    "text",
    "terms",  # appended last: the streams before it stay as they were
)
PRODUCTS = {p.name: p for p in (RADAR, LEDGERLY)}


def _account_columns(acc: Accounts) -> dict:
    return {
        "account_id": acc.ids,
        "name": acc.names,
        "segment": np.array(SEGMENTS, dtype=object)[acc.segment],
        "industry": acc.industry,
        "region": acc.region,
        "created_at": to_timestamps(acc.created_ord, acc.created_second),
        "csm_owner": acc.csm,
        "csm_email": np.array([owner_address(name) for name in acc.csm], dtype=object),
    }


def owner_address(name: str) -> str:
    """A made-up address for a sample CSM, on the domain reserved for examples (RFC 2606)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return ".".join(re.findall(r"[a-z0-9]+", ascii_name.lower())) + "@example.com"


def _with_terms(rng: np.random.Generator, acc: Accounts, product: Product) -> Accounts:
    """The product's contract terms: months per term of each term contract, and which
    monthly accounts are written one line per invoiced month."""
    months, shares = zip(*product.term_months, strict=True)
    term = np.asarray(months)[rng.choice(len(months), size=acc.n, p=np.asarray(shares) / sum(shares))]
    invoice = acc.invoice_lines
    if product.invoice_line_share is not None:
        invoice = ~acc.annual & (rng.random(acc.n) < product.invoice_line_share)
    return dataclasses.replace(acc, term_months=term, invoice_lines=invoice)


def generate_workspace(
    out: Path,
    *,
    accounts: int | None = None,
    years: int | None = None,
    seed: int = 7,
    end: dt.date | None = None,
    fmt: str = "parquet",
    progress: Callable[[str], None] | None = None,
    product: Product | str = RADAR,
) -> dict[str, int]:
    """Writes one file per contract table into `out` (out/accounts.parquet,
    out/subscriptions.parquet, ...; or .csv) and returns row counts per table. Size,
    history and end default to the product's (default sample: 1500 accounts, 3 years
    to 2026-10-31)."""
    if isinstance(product, str):
        if product not in PRODUCTS:
            raise ValueError(f"unknown sample product {product!r}; use one of {', '.join(PRODUCTS)}")
        product = PRODUCTS[product]
    accounts = product.accounts if accounts is None else accounts
    years = product.years if years is None else years
    end = dt.date.fromisoformat(product.end) if end is None else end
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {FORMATS}")
    if accounts < 1:
        raise ValueError("accounts must be >= 1")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    window = Window.ending(end, years)
    rng = dict(zip(_STREAMS, (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(_STREAMS)))))
    step = progress or (lambda _name: None)
    counts: dict[str, int] = {}

    def emit(name: str, columns: dict | Iterator[dict]) -> None:
        chunks = [columns] if isinstance(columns, dict) else columns
        counts[name] = write_table(TABLES[name], chunks, out / name, fmt)

    step("accounts")
    acc = draw_accounts(rng["accounts"], accounts, window)
    if product is not RADAR:
        acc = _with_terms(rng["terms"], acc, product)
    emit("accounts", _account_columns(acc))
    step("subscriptions")
    incidents = draw_incidents(rng["incidents"], acc.n, window, product.story.incidents_per_year)
    health = HealthProcess(rng["health"], acc, window, incidents, product.story)
    life = simulate(rng["lifecycle"], acc, window, health)
    emit(
        "subscriptions",
        subscription_rows(life.segments, acc, window, product.renewal_export_lag_days, product.custom_term_every),
    )
    step("usage_events")
    emit("usage_events", usage_chunks(rng["usage"], acc, window, life.trajectories, product=product))
    composer = Composer(PhraseBank.load(), rng["text"])
    step("support_tickets")
    emit("support_tickets", ticket_rows(rng["support"], acc, window, life.trajectories, incidents, composer))
    qbrs = qbr_schedule(rng["qbr"], acc, window, life.trajectories, life.starts)
    step("feedback")
    emit("feedback", feedback_rows(rng["feedback"], acc, window, life.trajectories, qbrs, composer))
    step("touchpoints")
    emit(
        "touchpoints", touchpoint_rows(rng["touchpoints"], acc, window, life.trajectories, life.starts, qbrs, composer)
    )
    return {name: counts[name] for name in TABLES}
