"""The weekly digests e-mailed to each CSM owner over SMTP, once per owner and week.

Each message is multipart/alternative: the Markdown digest as the plain-text part, and the
HTML digest in a multipart/related part whose trend charts are attached images referenced
by `cid:` (web mail clients block `data:` images; the HTML file on disk keeps them inline).
Addresses come from `mail.owner_addresses`, else from the accounts table's `csm_email`
column; an owner with neither is reported, not guessed.

Sent messages are recorded in the workspace (`digest_mails`: owner, week, address,
Message-ID) right after the server accepts each one, so a rerun, or a run resumed after
the server failed half-way, sends only what is missing. The Message-ID is derived from
the owner and the week, the same on a resend. Connection, TLS and login failures stop the
sending with a `MailError` saying what failed and that the next run sends the rest.
"""

from __future__ import annotations

import base64
import hashlib
import re
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

import duckdb

from radar.settings import MailSettings
from serving.workflow.digest import Digests, OwnerDigest
from serving.workflow.digest_render import digest_html, digest_markdown

SENT = "digest_mails"
DATA_PNG = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


class MailError(RuntimeError):
    """The SMTP server could not be reached or refused us; the message says what and what to do."""


@dataclass
class MailReport:
    server: str
    sent: list[tuple[str, str, str]] = field(default_factory=list)  # (owner, address, Message-ID)
    already: list[str] = field(default_factory=list)  # owners mailed by an earlier run for this week
    no_address: list[str] = field(default_factory=list)  # owners without an address
    refused: list[tuple[str, str]] = field(default_factory=list)  # (owner, why) recipients the server refused

    @property
    def ok(self) -> bool:
        return not self.refused


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"""CREATE TABLE IF NOT EXISTS {SENT} (
        owner VARCHAR, week_end DATE, address VARCHAR, message_id VARCHAR, sent_at TIMESTAMP,
        PRIMARY KEY (owner, week_end))""")


def owner_addresses(con: duckdb.DuckDBPyConnection, cfg: MailSettings) -> dict[str, str]:
    """CSM owner -> address: the accounts table's csm_email (the most frequent per owner), then
    `mail.owner_addresses` over it."""
    found: dict[str, str] = {}
    columns = {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'accounts'"
        ).fetchall()
    }
    if {"csm_owner", "csm_email"} <= columns:
        rows = con.execute(
            "SELECT csm_owner, csm_email, count(*) AS n FROM accounts WHERE csm_owner IS NOT NULL "
            "AND csm_email LIKE '%@%' GROUP BY ALL ORDER BY csm_owner, n DESC, csm_email"
        ).fetchall()
        for owner, address, _ in rows:
            found.setdefault(str(owner), str(address).strip())
    return {**found, **cfg.owner_addresses}


def inline_images(html: str, domain: str) -> tuple[str, list[tuple[str, bytes]]]:
    """The HTML with each `data:` PNG replaced by a `cid:` reference, and the (content id,
    PNG bytes) to attach; identical images are attached once."""
    images: dict[bytes, str] = {}

    def swap(m: re.Match) -> str:
        png = base64.b64decode(m.group(1))
        cid = images.setdefault(png, f"chart{len(images) + 1}.{hashlib.sha256(png).hexdigest()[:12]}@{domain}")
        return f'src="cid:{cid}"'

    return DATA_PNG.sub(swap, html), [(cid, png) for png, cid in images.items()]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def message_id(d: OwnerDigest, run: Digests, domain: str) -> str:
    digest = hashlib.sha256(f"{d.owner}|{run.week_end}".encode()).hexdigest()[:20]
    return f"<digest.{run.week_end}.{digest}@{domain}>"


def digest_message(d: OwnerDigest, run: Digests, address: str, cfg: MailSettings, now: datetime) -> EmailMessage:
    """One owner's digest as a multipart/alternative message with the charts attached by cid."""
    domain = cfg.from_address.rsplit("@", 1)[1] or "localhost"
    msg = EmailMessage()
    msg["Subject"] = _one_line(f"Account Radar weekly digest for {d.owner}, week ending {run.week_end}")
    msg["From"] = cfg.from_address
    msg["To"] = address
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id(d, run, domain)
    msg.set_content(digest_markdown(d, run))
    html, images = inline_images(digest_html(d, run), domain)
    msg.add_alternative(html, subtype="html")
    html_part = msg.get_payload()[1]
    for cid, png in images:
        html_part.add_related(png, "image", "png", cid=f"<{cid}>", disposition="inline", filename=f"{cid[:18]}.png")
    return msg


def _server(cfg: MailSettings) -> str:
    return f"{cfg.host}:{cfg.port}"


def _unverified(where: str, exc: ssl.SSLCertVerificationError) -> str:
    return (
        f"the SMTP server {where} presented a certificate that could not be verified ({exc.verify_message}): "
        "set mail.ca_file to its CA's certificate, or check mail.host"
    )


def _connect(cfg: MailSettings) -> smtplib.SMTP:
    """A connected (and, as configured, encrypted and logged-in) SMTP session."""
    where = _server(cfg)
    try:
        context = ssl.create_default_context(cafile=str(cfg.ca_file) if cfg.ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise MailError(f"cannot read mail.ca_file {cfg.ca_file}: {exc}") from exc
    try:
        if cfg.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout_seconds, context=context)
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_seconds)
    except ssl.SSLCertVerificationError as exc:
        raise MailError(_unverified(where, exc)) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"cannot connect to the SMTP server {where}: {exc}") from exc
    try:
        if cfg.security == "starttls":
            smtp.starttls(context=context)
        if cfg.username:
            smtp.login(cfg.username, cfg.password.get_secret_value() if cfg.password else "")
    except smtplib.SMTPNotSupportedError as exc:
        smtp.close()
        raise MailError(
            f'the SMTP server {where} does not offer STARTTLS: use its TLS port with mail.security = "tls", '
            'or mail.security = "none" for a relay on this machine'
        ) from exc
    except smtplib.SMTPAuthenticationError as exc:
        smtp.close()
        raise MailError(
            f"the SMTP server {where} refused the login of {cfg.username!r}: check mail.username and "
            "RADAR_MAIL__PASSWORD"
        ) from exc
    except ssl.SSLCertVerificationError as exc:
        smtp.close()
        raise MailError(_unverified(where, exc)) from exc
    except (OSError, smtplib.SMTPException) as exc:
        smtp.close()
        raise MailError(f"the SMTP server {where} failed during {cfg.security} or login: {exc}") from exc
    return smtp


def send_digests(
    run: Digests, cfg: MailSettings, con: duckdb.DuckDBPyConnection, *, now: datetime | None = None
) -> MailReport:
    """E-mail each owner's digest of `run` that was not sent for its week yet; record each sent one.

    Raises MailError when the server cannot be reached, or fails mid-way (what was sent is
    recorded: the next run sends the rest)."""
    if not cfg.host:
        raise MailError("mail.host is not set: no SMTP server to send the digests with")
    now = now or datetime.now(UTC)
    ensure_table(con)
    report = MailReport(_server(cfg))
    done = {r[0] for r in con.execute(f"SELECT owner FROM {SENT} WHERE week_end = ?", [run.week_end]).fetchall()}
    addresses = owner_addresses(con, cfg)
    todo: list[tuple[OwnerDigest, str]] = []
    for d in run.owners:
        if d.owner in done:
            report.already.append(d.owner)
        elif d.owner not in addresses:
            report.no_address.append(d.owner)
        else:
            todo.append((d, addresses[d.owner]))
    if not todo:
        return report
    smtp = _connect(cfg)
    try:
        for d, address in todo:
            msg = digest_message(d, run, address, cfg, now)
            try:
                smtp.send_message(msg)
            except smtplib.SMTPRecipientsRefused as exc:
                report.refused.append((d.owner, f"{address} refused: {_refusal(exc)}"))
                continue
            except (OSError, smtplib.SMTPException) as exc:
                raise MailError(
                    f"the SMTP server {report.server} failed while sending {d.owner}'s digest: {exc}; "
                    f"{len(report.sent)} of {len(todo)} sent, the next run sends the rest"
                ) from exc
            con.execute(
                f"INSERT INTO {SENT} VALUES (?, ?, ?, ?, ?)",
                [d.owner, run.week_end, address, msg["Message-ID"], now.astimezone(UTC).replace(tzinfo=None)],
            )
            report.sent.append((d.owner, address, msg["Message-ID"]))
    finally:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()
    return report


def _refusal(exc: smtplib.SMTPRecipientsRefused) -> str:
    return "; ".join(
        f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"
        for code, text in exc.recipients.values()
    )
