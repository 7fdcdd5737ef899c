"""What differs between the sample products: the event vocabulary, contract terms, money
values carried by events, the story's knobs and how the export ends.

`RADAR` is the default sample (its values are the generator's historical constants, so the
default workspace is unchanged); `features.sampledata.ledgerly` defines the second one.
The generator's steps read these fields instead of module constants where a product
differs; everything else (accounts, health, lifecycle, texts) is shared.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from features.sampledata.catalog import EVENT_TYPES

# billing_period as a billing export writes it, by months per period
PERIOD_WORDS = {1: "month", 3: "quarter", 6: "semiannual", 12: "year"}


@dataclass(frozen=True)
class Story:
    """Knobs of the hidden health process and the incidents (`features.sampledata.story`)."""

    champion_rate: float = 0.13 / 52  # weekly probability that the account's champion leaves
    incidents_per_year: float = 2.3  # global product incidents
    season_amplitude: float = 0.30  # budget pressure at its peak
    season_peak_day: int = 10  # day of the year of the peak (early January)
    price_increase_scale: float = 1.0  # multiplies the probability of a price increase at renewal


@dataclass(frozen=True)
class Product:
    name: str
    description: str
    end: str  # ISO date: the last day of the window (the export date)
    accounts: int  # default size
    years: int
    # the generator draws the default event types; a product renames them (same roles)
    event_names: dict[str, str] = field(default_factory=dict)
    # product event name -> (median amount per event by segment smb/mid/ent, health slope of its log)
    money_events: dict[str, tuple[tuple[float, float, float], float]] = field(default_factory=dict)
    # months per term of the term (non-monthly) contracts, with their shares; monthly is the rest
    term_months: tuple[tuple[int, float], ...] = ((12, 1.0),)
    # share of monthly accounts written as one line per invoiced month (None: the accounts' own draw)
    invoice_line_share: float | None = None
    # monthly renewal lines of the last days before `end` missing from the export (posted at
    # month close, after it): the subscriptions stop covering those accounts before the events do
    renewal_export_lag_days: int = 0
    # every n-th account on a term contract (0: none; the first, the n+1-th, ...) renegotiated its last terms: its
    # lines of the last nine months say billing_period "custom", a word no mapping knows
    custom_term_every: int = 0
    story: Story = field(default_factory=Story)

    def event_name(self, default_name: str) -> str:
        return self.event_names.get(default_name, default_name)

    @property
    def event_types(self) -> tuple[str, ...]:
        """This product's event names, in the generator's order of event types."""
        return tuple(self.event_name(e) for e in EVENT_TYPES)


RADAR = Product(
    name="radar",
    description="an analytics product: dashboards, alerts, exports; monthly and annual plans",
    end="2026-10-31",
    accounts=1500,
    years=3,
)
