"""Send a digest through SMTP: settings from the environment, one redacted line on failure."""

from __future__ import annotations

import base64
import copy
import logging
import math
import os
import smtplib
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Literal

from base.errors import ShelfwiseError

log = logging.getLogger(__name__)

Security = Literal["starttls", "ssl", "none"]
DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "ssl": 465, "none": 25}


class DigestSendError(ShelfwiseError):
    """The SMTP server did not take the message; nothing was recorded as sent."""


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send; the password never appears in repr, logs or error messages."""

    host: str
    port: int
    security: Security
    mail_from: str
    mail_to: tuple[str, ...]
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SmtpSettings:
        """Read ``SHELFWISE_SMTP_HOST``, ``_PORT``, ``_SECURITY`` (starttls|ssl|none), ``_USER``,
        ``_PASSWORD``, ``_TIMEOUT``, ``SHELFWISE_MAIL_FROM`` and ``SHELFWISE_MAIL_TO``
        (comma-separated).
        """
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        missing = [
            v
            for v in ("SHELFWISE_SMTP_HOST", "SHELFWISE_MAIL_FROM", "SHELFWISE_MAIL_TO")
            if not get(v)
        ]
        if missing:
            raise ShelfwiseError(f"cannot send: set {', '.join(missing)} (see docs/digest.md)")
        security = (get("SHELFWISE_SMTP_SECURITY") or "starttls").lower()
        if security not in DEFAULT_PORTS:
            raise ShelfwiseError(
                f"SHELFWISE_SMTP_SECURITY must be starttls, ssl or none, not {security!r}"
            )
        port_text = get("SHELFWISE_SMTP_PORT")
        try:
            port = int(port_text) if port_text else DEFAULT_PORTS[security]
        except ValueError:
            raise ShelfwiseError(
                f"SHELFWISE_SMTP_PORT must be a port number, not {port_text!r}"
            ) from None
        if not 1 <= port <= 65535:
            raise ShelfwiseError(f"SHELFWISE_SMTP_PORT must be in 1..65535, not {port}")
        timeout_text = get("SHELFWISE_SMTP_TIMEOUT")
        try:
            timeout = float(timeout_text) if timeout_text else 30.0
        except ValueError:
            raise ShelfwiseError(
                f"SHELFWISE_SMTP_TIMEOUT must be seconds, not {timeout_text!r}"
            ) from None
        if not (math.isfinite(timeout) and timeout > 0):
            raise ShelfwiseError(
                f"SHELFWISE_SMTP_TIMEOUT must be a positive number of seconds, not {timeout_text!r}"
            )
        user = get("SHELFWISE_SMTP_USER")
        # Not stripped: a password may legitimately start or end with a space.
        password = env.get("SHELFWISE_SMTP_PASSWORD") or None
        if bool(user) != bool(password):
            raise ShelfwiseError(
                "set both SHELFWISE_SMTP_USER and SHELFWISE_SMTP_PASSWORD, or neither"
            )
        mail_from = get("SHELFWISE_MAIL_FROM")
        assert mail_from is not None
        if "@" not in mail_from:
            raise ShelfwiseError(f"SHELFWISE_MAIL_FROM is not an address: {mail_from!r}")
        mail_to = tuple(addr for _, addr in getaddresses([get("SHELFWISE_MAIL_TO") or ""]) if addr)
        bad = [a for a in mail_to if "@" not in a]
        if not mail_to or bad:
            raise ShelfwiseError(
                "SHELFWISE_MAIL_TO must be comma-separated addresses; "
                f"bad: {', '.join(bad) or '(none)'}"
            )
        return cls(
            host=get("SHELFWISE_SMTP_HOST") or "",
            port=port,
            security=security,  # type: ignore[arg-type]
            mail_from=mail_from,
            mail_to=mail_to,
            user=user,
            password=password,
            timeout=timeout,
        )

    def redact(self, text: str) -> str:
        """``text`` with the password, and the base64 forms AUTH sends it in, replaced by ***."""
        if not self.password:
            return text
        secrets = {self.password}
        for raw in (
            self.password,
            f"\0{self.user}\0{self.password}",
            f"{self.user}\0{self.user}\0{self.password}",
        ):
            secrets.add(base64.b64encode(raw.encode()).decode())
        for s in sorted(secrets, key=len, reverse=True):
            text = text.replace(s, "***")
        return text


@dataclass(frozen=True)
class SendResult:
    accepted: tuple[str, ...]
    refused: dict[str, str]
    message_id: str | None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "every recipient was refused: " + "; ".join(
            f"{addr} ({code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg})"
            for addr, (code, msg) in exc.recipients.items()
        )
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"login refused ({exc.smtp_code} {exc.smtp_error.decode(errors='replace')})"
    if isinstance(exc, smtplib.SMTPResponseException):
        error = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        return f"server answered {exc.smtp_code} {error}"
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return f"{exc} (check SHELFWISE_SMTP_SECURITY)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    return f"{type(exc).__name__}: {exc}"


def send(message: EmailMessage, settings: SmtpSettings) -> SendResult:
    """Deliver ``message`` to ``settings.mail_to`` through the configured SMTP server.

    Returns once the server accepted the message for at least one recipient (refused ones are in
    the result). Raises DigestSendError, with one redacted line, when it accepted it for none.
    """
    message = copy.deepcopy(message)
    if "From" not in message:
        message["From"] = settings.mail_from
    if "To" not in message:
        message["To"] = ", ".join(settings.mail_to)
    where = f"{settings.host}:{settings.port}"
    log.info(
        "sending the digest to %d recipient(s) via %s (%s)",
        len(settings.mail_to),
        where,
        settings.security,
    )
    if (
        settings.security == "none"
        and settings.user
        and settings.host not in ("localhost", "127.0.0.1", "::1")
    ):
        log.warning("SHELFWISE_SMTP_SECURITY=none: the SMTP login crosses the network unencrypted")
    context = ssl.create_default_context()
    client: smtplib.SMTP | None = None
    try:
        if settings.security == "ssl":
            client = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout, context=context
            )
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        if settings.security == "starttls":
            client.starttls(context=context)
        if settings.user and settings.password:
            client.login(settings.user, settings.password)
        refused = client.send_message(
            message, from_addr=settings.mail_from, to_addrs=list(settings.mail_to)
        )
    except (smtplib.SMTPException, OSError) as exc:
        # No exception chaining: the original could carry the server's echo of what we sent.
        raise DigestSendError(
            settings.redact(f"could not send the digest via {where}: {_describe(exc)}").replace(
                "\n", " "
            )
        ) from None
    finally:
        if client is not None:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()
    refused_text = {
        addr: f"{code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg}"
        for addr, (code, msg) in refused.items()
    }
    for addr, why in refused_text.items():
        log.warning("the server refused recipient %s: %s", addr, settings.redact(why))
    accepted = tuple(a for a in settings.mail_to if a not in refused)
    return SendResult(accepted, refused_text, message["Message-ID"])
