"""Settings of the weekly run and of delivery: the digests by e-mail (SMTP), the alerts to a
Slack-compatible incoming webhook, and `radar run`'s sources."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from radar.settings.base import Section as _Section


class MailSettings(_Section):
    """The weekly digests e-mailed to each CSM owner (`radar run`, `radar digest --send`)."""

    host: str | None = Field(None, description="SMTP server; unset = the digests are written to disk only.")
    port: int = Field(587, gt=0, lt=65536, description="SMTP port (587 for STARTTLS, 465 for implicit TLS).")
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls",
        description="starttls: upgrade the connection before logging in (required, not optional); tls: TLS from "
        "the first byte (port 465); none: plain text (a relay on localhost only).",
    )
    ca_file: Path | None = Field(
        None,
        description="CA certificates (PEM) the server's certificate is checked against, for a server with a "
        "private CA; unset = the system's. The certificate is always verified.",
    )
    username: str | None = Field(None, description="Login name; unset = no login.")
    password: SecretStr | None = Field(
        None, description="Login password; set it with the RADAR_MAIL__PASSWORD environment variable, not in a file."
    )
    from_address: str = Field("account-radar@localhost", description="The digests' From address.")
    owner_addresses: dict[str, str] = Field(
        default_factory=dict,
        description="CSM owner name (as in csm_owner) -> e-mail address; overrides the accounts table's "
        "csm_email column. Owners with neither get no mail (reported).",
    )
    timeout_seconds: float = Field(30.0, gt=0, description="Timeout of the SMTP connection and of each command.")

    @model_validator(mode="after")
    def _addresses(self) -> MailSettings:
        for owner, address in self.owner_addresses.items():
            if "@" not in address:
                raise ValueError(f"owner_addresses.{owner}: {address!r} is not an e-mail address")
        if "@" not in self.from_address:
            raise ValueError(f"from_address {self.from_address!r} is not an e-mail address")
        return self


class SlackSettings(_Section):
    """The week's alerts posted to a Slack-compatible incoming webhook: one message per CSM owner per run."""

    webhook_url: SecretStr | None = Field(
        None,
        description="Incoming webhook URL (https://hooks.slack.com/services/...); unset = no Slack messages. "
        "It holds a token: set it with RADAR_SLACK__WEBHOOK_URL.",
    )
    routings: tuple[Literal["meeting", "review", "tag"], ...] = Field(
        ("meeting", "review"), description="Routings of the alerts listed in the messages."
    )
    max_alerts: int = Field(10, ge=1, le=50, description="Alerts listed per message; the rest are counted.")
    timeout_seconds: float = Field(10.0, gt=0, description="Timeout of one request.")

    @model_validator(mode="after")
    def _url(self) -> SlackSettings:
        url = self.webhook_url.get_secret_value() if self.webhook_url else None
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("slack.webhook_url must be an http:// or https:// URL")
        return self


class RunSettings(_Section):
    """`radar run`: the week's whole job (ingest, snapshots, scores, alerts, digests, delivery, monitoring)."""

    source_dir: Path | None = Field(
        None,
        description="Folder of contract tables (CSV or Parquet) ingested when its files changed; unset = no "
        "ingest step (a database workspace, workspace_url, or an ingest run apart).",
    )
    crm_to: str = Field(
        "workspace",
        description="Where the CRM table goes (as `radar score --to`): 'workspace', a file, or a SQLAlchemy URL.",
    )
    lock_wait_seconds: float = Field(
        0,
        ge=0,
        description="How long `radar run` waits for another command writing the workspace before it exits 1 "
        "naming it (0: at once, so two scheduled runs never pile up).",
    )
    accept_shrink: bool = Field(
        False, description="Ingest even when a table shrank beyond ingest.max_shrink_share (see `radar ingest`)."
    )
