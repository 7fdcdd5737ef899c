"""The input data contract of DOMAIN section 1, declared once.

Ingest derives its per-row checks (SQL) and the post-condition table contracts
(pandera) from these declarations; the sample-data generator writes to them.
Timestamps are stored as naive UTC: naive inputs are read as UTC, offsets converted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ColumnType = Literal["string", "timestamp", "date", "float", "int", "bool"]


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    required: bool = False
    allowed: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    default: float | None = None  # value stored when the input is empty
    description: str = ""
    # int columns: words accepted for a number, normalised key (lower case, single spaces) -> value
    words: tuple[tuple[str, int], ...] = ()
    words_hint: str = ""  # the accepted forms, for the reason of a value that is neither a number nor a word


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    required: bool = False
    key: str | None = None  # unique id column
    time_column: str | None = None  # the column point-in-time filters use
    description: str = ""
    # (later column, earlier column): later >= earlier when both are present
    ordered: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


PRIORITIES = ("low", "normal", "high", "urgent")
CHANNELS = ("nps_survey", "csat_survey", "chat", "call", "email", "in_app", "qbr", "review")
TOUCHPOINT_KINDS = ("meeting", "qbr", "onboarding_session", "email", "call")


def _period_words() -> dict[str, int]:
    """billing_period words -> months. Keys are normalised: lower case, runs of spaces,
    '-' and '_' as one space ("Half-Year" -> "half year"). "N months"/"N years" with digits
    are parsed too; more words can be added in radar.toml (ingest.billing_period_words)."""
    words = {
        "month": 1, "monthly": 1, "per month": 1,
        "quarter": 3, "quarterly": 3,
        "half year": 6, "halfyear": 6, "half yearly": 6, "semiannual": 6, "semi annual": 6,
        "semiannually": 6, "semi annually": 6,
        "year": 12, "yearly": 12, "annual": 12, "annually": 12, "per year": 12,
        "biennial": 24, "biennially": 24,
        "triennial": 36, "triennially": 36,
    }  # fmt: skip
    numbers = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
    for n, word in enumerate(numbers, start=1):
        for unit, months in (("month", n), ("year", 12 * n)):
            words[f"{word} {unit}"] = words[f"{word} {unit}s"] = months
    return words


BILLING_PERIOD_WORDS = _period_words()
# the forms a reject reason names
BILLING_PERIOD_FORMS = "a number of months (1, 3, 6, 12, 24, '3 months', '2 years') or month, quarter, half-year, semiannual, year, two years"

ACCOUNTS = Table(
    "accounts",
    (
        Column("account_id", "string", required=True),
        Column("name", "string"),
        Column("segment", "string"),
        Column("industry", "string"),
        Column("region", "string"),
        Column("created_at", "timestamp"),
        Column("csm_owner", "string"),
        Column("csm_email", "string", description="The CSM owner's e-mail address (where the weekly digest is sent)."),
        Column("crm_id", "string", description="The account's record id in the CRM (carried to crm_accounts)."),
    ),
    key="account_id",
    description="One row per customer account.",
)

SUBSCRIPTIONS = Table(
    "subscriptions",
    (
        Column("subscription_id", "string", required=True),
        Column("account_id", "string", required=True),
        Column("product", "string", required=True),
        Column("start_date", "date", required=True),
        Column("end_date", "date", description="Empty means open-ended."),
        Column("mrr", "float", required=True, min=0),
        Column("seats", "int", min=0),
        Column(
            "billing_period",
            "int",
            min=1,
            max=120,
            words=tuple(BILLING_PERIOD_WORDS.items()),
            words_hint=BILLING_PERIOD_FORMS,
            description="Months per billing period: a number of months or a word (month, quarter, half-year, "
            "semiannual, year, two years, ...), stored as months.",
        ),
    ),
    required=True,
    key="subscription_id",
    ordered=(("end_date", "start_date"),),
    description="Subscription lines: the source of MRR, churn and expansion.",
)

USAGE_EVENTS = Table(
    "usage_events",
    (
        Column("account_id", "string", required=True),
        Column("occurred_at", "timestamp", required=True),
        Column("event_type", "string", required=True),
        Column("user_id", "string"),
        Column("quantity", "float", min=0, default=1.0, description="Defaults to 1 when empty."),
    ),
    time_column="occurred_at",
    description="Product usage events.",
)

SUPPORT_TICKETS = Table(
    "support_tickets",
    (
        Column("ticket_id", "string", required=True),
        Column("account_id", "string", required=True),
        Column("opened_at", "timestamp", required=True),
        Column("first_response_at", "timestamp"),
        Column("resolved_at", "timestamp"),
        Column("priority", "string", allowed=PRIORITIES),
        Column("category", "string"),
        Column("escalated", "bool"),
        Column("reopened", "bool"),
        Column("csat", "float", min=1, max=5),
        Column("subject", "string"),
        Column("body", "string"),
    ),
    key="ticket_id",
    time_column="opened_at",
    ordered=(("first_response_at", "opened_at"), ("resolved_at", "opened_at")),
    description="Support tickets.",
)

FEEDBACK = Table(
    "feedback",
    (
        Column("feedback_id", "string", required=True),
        Column("account_id", "string", required=True),
        Column("submitted_at", "timestamp", required=True),
        Column("channel", "string", required=True, allowed=CHANNELS),
        Column("score", "float"),
        Column("text", "string"),
        Column("language", "string"),
    ),
    key="feedback_id",
    time_column="submitted_at",
    description="Surveys and conversation notes.",
)

TOUCHPOINTS = Table(
    "touchpoints",
    (
        Column("account_id", "string", required=True),
        Column("occurred_at", "timestamp", required=True),
        Column("kind", "string", required=True, allowed=TOUCHPOINT_KINDS),
        Column("notes", "string"),
    ),
    time_column="occurred_at",
    description="Meetings, QBRs, onboarding sessions, emails and calls with the customer.",
)

TABLES: dict[str, Table] = {
    t.name: t for t in (ACCOUNTS, SUBSCRIPTIONS, USAGE_EVENTS, SUPPORT_TICKETS, FEEDBACK, TOUCHPOINTS)
}
