"""The digests e-mailed over SMTP to a real server on 127.0.0.1 (aiosmtpd): one
multipart/alternative message per owner whose HTML's cid: charts all resolve to attached
images, addresses from the accounts table or the config, nothing sent twice, and a server
that is down or refuses STARTTLS gives a clear error and a run that can be resumed."""

from __future__ import annotations

import email
import re
import shutil
import socket
from datetime import UTC, date, datetime
from email import policy

import duckdb
import pytest
from aiosmtpd.controller import Controller

from radar.settings import MailSettings
from serving.workflow.digest import Digests, FlaggedAccount, OwnerDigest
from serving.workflow.mail import MailError, inline_images, owner_addresses, send_digests

NOW = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)
TREND = ((date(2026, 10, 12), 0.04), (date(2026, 10, 19), 0.07), (date(2026, 10, 26), 0.12))


def _flagged(account: str, trend=TREND) -> FlaggedAccount:
    return FlaggedAccount(
        account_id=account,
        name=f"Account {account} <b>&",
        segment="smb",
        mrr=100.0,
        kind="risk",
        risk_tier="red",
        churn_risk=0.12,
        churn_lift=4.0,
        risk_summary="churn risk next 90 days 12% (4.0x typical)",
        expected_mrr_loss=12.0,
        upsell_likelihood=0.1,
        insight_score=0.9,
        routing="meeting",
        new=True,
        reasons=("adoption fell",),
        signals=(),
        action="Call the sponsor",
        owner="CSM",
        playbook="save",
        trend=trend,
    )


def _digests(owners: list[str]) -> Digests:
    digests = tuple(
        OwnerDigest(
            owner=o,
            slug=o.lower().replace(" ", "-"),
            accounts=10,
            at_risk=(_flagged(f"{i}a"), _flagged(f"{i}b", TREND[1:])),
            more_at_risk=0,
            new_at_risk=2,
            opportunities=(),
            more_opportunities=0,
            improved=(),
            more_improved=0,
        )
        for i, o in enumerate(owners)
    )
    lineage = {"renewal_model": "r", "renewal_model_version": "1", "upsell_model": "u", "upsell_model_version": "2"}
    return Digests(date(2026, 11, 1), date(2026, 10, 26), date(2026, 10, 19), "alerts", digests, lineage, 0.03, 3, 1.5)


class Inbox:
    def __init__(self):
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield inbox, MailSettings(host="127.0.0.1", port=controller.port, security="none", from_address="radar@x.test")
    finally:
        controller.stop()


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "radar.duckdb"))
    connection.execute(
        "CREATE TABLE accounts AS SELECT * FROM (VALUES ('a1', 'Ana Lima', 'ana@x.test'), "
        "('a2', 'Ana Lima', 'ana@x.test'), ('a3', 'Ben Okafor', 'ben@x.test'), ('a4', 'Chloé', NULL)) "
        "t(account_id, csm_owner, csm_email)"
    )
    yield connection
    connection.close()


def test_each_owner_gets_one_multipart_message_whose_cid_images_resolve_and_a_rerun_sends_nothing(smtp, con):
    inbox, cfg = smtp
    run = _digests(["Ana Lima", "Ben Okafor", "Chloé"])
    cfg = cfg.model_copy(update={"owner_addresses": {"Chloé": "chloe@x.test"}})
    report = send_digests(run, cfg, con, now=NOW)
    assert report.ok and [(o, a) for o, a, _ in report.sent] == [
        ("Ana Lima", "ana@x.test"),
        ("Ben Okafor", "ben@x.test"),
        ("Chloé", "chloe@x.test"),
    ]
    assert sorted(r for rcpts, _ in inbox.messages for r in rcpts) == ["ana@x.test", "ben@x.test", "chloe@x.test"]
    for rcpts, raw in inbox.messages:
        msg = email.message_from_bytes(raw, policy=policy.default)
        assert msg.get_content_type() == "multipart/alternative" and msg["To"] == rcpts[0]
        plain = msg.get_body(("plain",)).get_content()
        html_part = msg.get_body(("html",))
        html = html_part.get_content()
        assert "Weekly digest for" in plain and "<table" in html and "data:image" not in html
        assert "Account 0a &lt;b&gt;&amp;" in html or "Account 1a &lt;b&gt;&amp;" in html or "Account 2a" in html
        related = next(p for p in msg.walk() if p.get_content_type() == "multipart/related")
        images = {
            p["Content-ID"].strip("<>"): p.get_content()
            for p in related.iter_parts()
            if p.get_content_maintype() == "image"
        }
        cids = re.findall(r'src="cid:([^"]+)"', html)
        assert len(cids) == 2 and set(cids) == set(images)  # two trend charts, each attached once
        assert all(png.startswith(b"\x89PNG") for png in images.values())
    ids = [m for _, _, m in report.sent]
    assert con.execute("SELECT list(message_id ORDER BY owner) FROM digest_mails").fetchone()[0] == ids

    again = send_digests(run, cfg, con, now=NOW)
    assert again.sent == [] and sorted(again.already) == ["Ana Lima", "Ben Okafor", "Chloé"]
    assert len(inbox.messages) == 3


def test_owners_without_an_address_are_reported_not_guessed(smtp, con):
    inbox, cfg = smtp
    report = send_digests(_digests(["Ana Lima", "Chloé", "Unassigned"]), cfg, con, now=NOW)
    assert [o for o, _, _ in report.sent] == ["Ana Lima"] and report.no_address == ["Chloé", "Unassigned"]
    assert owner_addresses(con, cfg) == {"Ana Lima": "ana@x.test", "Ben Okafor": "ben@x.test"}


def test_a_server_that_is_down_is_a_clear_error_and_the_next_run_sends_everything(smtp, con):
    inbox, cfg = smtp
    down = cfg.model_copy(update={"port": _free_port()})  # nobody listens there
    run = _digests(["Ana Lima", "Ben Okafor"])
    with pytest.raises(MailError, match=r"cannot connect to the SMTP server 127\.0\.0\.1:\d+: .*refused"):
        send_digests(run, down, con, now=NOW)
    assert con.execute("SELECT count(*) FROM digest_mails").fetchone() == (0,)
    resumed = send_digests(run, cfg, con, now=NOW)
    assert len(resumed.sent) == 2 and len(inbox.messages) == 2


def test_a_server_without_starttls_is_refused_when_starttls_is_required(smtp, con):
    inbox, cfg = smtp
    with pytest.raises(MailError, match="does not offer STARTTLS"):
        send_digests(_digests(["Ana Lima"]), cfg.model_copy(update={"security": "starttls"}), con, now=NOW)
    assert inbox.messages == []


def test_identical_charts_are_attached_once():
    png = "iVBORw0KGgo="
    html, images = inline_images(f'<img src="data:image/png;base64,{png}"><img src="data:image/png;base64,{png}">', "d")
    assert len(images) == 1 and html.count(f'src="cid:{images[0][0]}"') == 2


def test_radar_digest_send_mails_each_owner_once_on_a_served_project(served_project, tmp_path, smtp):
    """`radar digest --send` on the served project's workspace (a private copy): one message per
    owner with an address, the owner without one named, and a second --send sends nothing."""
    from typer.testing import CliRunner

    from radar.cli import app

    inbox, cfg = smtp
    root, _ = served_project
    shutil.copytree(root / "out", tmp_path / "out", ignore=shutil.ignore_patterns("digests", "alerts"))
    env = {
        "RADAR_CONFIG_FILE": None,
        "RADAR_OUTPUT_DIR": str(tmp_path / "out"),
        "COLUMNS": "200",
        "RADAR_MAIL__HOST": "127.0.0.1",
        "RADAR_MAIL__PORT": str(cfg.port),
        "RADAR_MAIL__SECURITY": "none",
        "RADAR_MAIL__FROM_ADDRESS": "radar@x.test",
        "RADAR_MAIL__OWNER_ADDRESSES": '{"Ana": "ana@x.test", "Ben": "ben@x.test"}',
    }
    first = CliRunner().invoke(app, ["--config", str(root / "radar.toml"), "digest", "--send"], env=env)
    assert first.exit_code == 0, first.output
    assert "2 sent, 0 sent earlier for this week; no address for Chloe" in first.output
    assert sorted(r for rcpts, _ in inbox.messages for r in rcpts) == ["ana@x.test", "ben@x.test"]
    again = CliRunner().invoke(app, ["--config", str(root / "radar.toml"), "digest", "--send"], env=env)
    assert again.exit_code == 0 and "0 sent, 2 sent earlier for this week" in again.output, again.output
    assert len(inbox.messages) == 2


def test_the_login_uses_the_configured_user_and_password_and_a_refused_login_is_named(con):
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def authenticator(server, session, envelope, mechanism, data):
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"radar", b"s3cret")
        return AuthResult(success=ok, handled=False)  # False: the server answers 535 itself

    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=_free_port(),
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=False,  # a test server without a certificate; real servers use STARTTLS
    )
    controller.start()
    try:

        def cfg(password: str) -> MailSettings:
            return MailSettings(
                host="127.0.0.1",
                port=controller.port,
                security="none",
                username="radar",
                password=password,
                from_address="radar@x.test",
                timeout_seconds=5,
            )

        with pytest.raises(
            MailError, match="refused the login of 'radar': check mail.username and RADAR_MAIL__PASSWORD"
        ):
            send_digests(_digests(["Ana Lima"]), cfg("wrong"), con, now=NOW)
        report = send_digests(_digests(["Ana Lima"]), cfg("s3cret"), con, now=NOW)
        assert [o for o, _, _ in report.sent] == ["Ana Lima"] and len(inbox.messages) == 1
    finally:
        controller.stop()


def test_owner_addresses_print_as_toml_that_reads_back():
    import tomllib

    from radar.settings import Settings, settings_toml

    text = settings_toml(Settings(mail={"owner_addresses": {"Chloé Garnier": "c@x.test", "ana": "a@x.test"}}))
    assert tomllib.loads(text)["mail"]["owner_addresses"] == {"Chloé Garnier": "c@x.test", "ana": "a@x.test"}


def _self_signed(folder) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and its key (PEM files), valid for a day."""
    x509 = pytest.importorskip("cryptography.x509")
    import datetime as dt
    import ipaddress

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "radar test SMTP")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp.pem", folder / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_path), str(key_path)


def test_starttls_upgrades_verifies_the_certificate_and_then_sends(tmp_path, con):
    import ssl

    cert, key = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    inbox = Inbox()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=_free_port(), tls_context=server_tls, require_starttls=True
    )
    controller.start()
    try:
        cfg = MailSettings(host="127.0.0.1", port=controller.port, from_address="radar@x.test", timeout_seconds=10)
        assert cfg.security == "starttls"  # the default
        with pytest.raises(MailError, match="certificate that could not be verified .* set mail.ca_file"):
            send_digests(_digests(["Ana Lima"]), cfg, con, now=NOW)  # a private CA the system does not know
        trusted = MailSettings(**{**cfg.model_dump(), "ca_file": cert})
        report = send_digests(_digests(["Ana Lima"]), trusted, con, now=NOW)
        assert [o for o, _, _ in report.sent] == ["Ana Lima"] and len(inbox.messages) == 1
    finally:
        controller.stop()


def test_the_ingested_sample_carries_an_address_for_every_csm_owner(tmp_path):
    """The contract's optional csm_email reaches the workspace, so the sample's digests have
    somewhere to go without a config map."""
    from features.ingest import ingest_workspace
    from features.sampledata import generate_workspace
    from radar.settings import load_settings

    generate_workspace(tmp_path / "ws", accounts=30, years=1, seed=3)
    settings = load_settings(output_dir=tmp_path / "out")
    ingest_workspace(tmp_path / "ws", settings)
    with duckdb.connect(str(settings.database_path), read_only=True) as connection:
        owners = {r[0] for r in connection.execute("SELECT DISTINCT csm_owner FROM accounts").fetchall()}
        found = owner_addresses(connection, MailSettings())
    assert owners and set(found) == owners
    assert all(re.fullmatch(r"[a-z0-9.]+@example\.com", address) for address in found.values())
