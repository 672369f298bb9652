"""The sink's SMTP listener (aiosmtpd): receives what Alertmanager's email receiver
sends, parses each message (subject, recipients, text and HTML parts) and keeps it like
a webhook notification. Plain SMTP without TLS: it listens inside the compose network
only (its port is not published).

Bounded and hardened like the HTTP side: a message above the size limit gets 552 (from
aiosmtpd, which stops storing the data), more recipients than allowed 452, more
concurrent sessions than allowed 421, a message that is not well-formed MIME, has more
than MAX_MIME_PARTS parts, or has no subject or text 554. Nothing a client sends can make
it raise. Messages are parsed in a worker thread: a slow one never holds up the event
loop (webhooks, the page, the healthcheck).
"""

from __future__ import annotations

import asyncio
import email
import email.errors
import email.policy
import logging
import re
from collections.abc import Callable

from aiosmtpd.smtp import SMTP, Envelope, Session

from .store import Entry, status_of_title

log = logging.getLogger("demo_app.alert_sink.smtp")
# Structural MIME defects: the message cannot be read as its sender meant it.
FATAL_DEFECTS = (
    email.errors.MissingHeaderBodySeparatorDefect,
    email.errors.NoBoundaryInMultipartDefect,
    email.errors.StartBoundaryNotFoundDefect,
    email.errors.CloseBoundaryNotFoundDefect,
    email.errors.MultipartInvariantViolationDefect,
    email.errors.InvalidMultipartContentTransferEncodingDefect,
    email.errors.InvalidBase64PaddingDefect,
    email.errors.InvalidBase64CharactersDefect,
)
# Headers our templates add (alertmanager/alertmanager.yml) so the sink knows the route
# and status of a message without guessing from its subject.
RECEIVER_HEADER = "X-Alertmanager-Receiver"
STATUS_HEADER = "X-Alertmanager-Status"
MAX_PART_CHARS = 256 * 1024
# Alertmanager's emails have two or three parts; nested multiparts by the thousand make
# the parser work for seconds. Counted by boundary lines, before any parsing.
MAX_MIME_PARTS = 32
BOUNDARY_LINE = re.compile(rb"^--\S", re.MULTILINE)


class MalformedEmail(ValueError):
    pass


def parse_email(raw: bytes, mail_from: str | None, rcpt_tos: list[str]) -> Entry:
    if len(BOUNDARY_LINE.findall(raw)) > 2 * MAX_MIME_PARTS:
        raise MalformedEmail(f"more than {MAX_MIME_PARTS} MIME parts")
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        defects = [d for part in msg.walk() for d in part.defects if isinstance(d, FATAL_DEFECTS)]
        if defects:
            raise MalformedEmail(", ".join(sorted({type(d).__name__ for d in defects})))
        subject = str(msg.get("Subject", "")).strip()
        if not subject:
            raise MalformedEmail("no Subject header")
        parts = {}
        for kind in ("plain", "html"):
            body = msg.get_body(preferencelist=(kind,))
            if body is not None and body.get_content_type() == f"text/{kind}":
                parts[kind] = body.get_content()[:MAX_PART_CHARS]
        if not parts:
            raise MalformedEmail("no text/plain or text/html part")
        headers = {k: str(v)[:1024] for k, v in msg.items()
                   if k.lower() in ("from", "to", "cc", "date", "message-id")
                   or k.lower().startswith("x-alertmanager-")}
    except MalformedEmail:
        raise
    except Exception as exc:  # header or charset errors the parser raises on access
        raise MalformedEmail(f"{type(exc).__name__}: {exc}") from None
    title_status, group = status_of_title(subject)
    status = str(msg.get(STATUS_HEADER, "")).strip().lower() or title_status or "firing"
    if status not in ("firing", "resolved"):
        raise MalformedEmail(f"{STATUS_HEADER} is {status!r}, not firing or resolved")
    return Entry(
        channel="email",
        receiver=str(msg.get(RECEIVER_HEADER, "")).strip()[:256] or "email",
        status=status, group=group[:1024], title=subject[:1024], alerts=[],
        content={"subject": subject, "mail_from": mail_from or "", "rcpt_to": rcpt_tos,
                 "headers": headers, "text": parts.get("plain", ""), "html": parts.get("html", "")},
    )


class Handler:
    """aiosmtpd handler: recipients bounded, DATA parsed and handed to `on_message`."""

    def __init__(self, on_message: Callable[[Entry], None], on_reject: Callable[[str], None],
                 max_recipients: int):
        self.on_message = on_message
        self.on_reject = on_reject
        self.max_recipients = max_recipients

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if len(envelope.rcpt_tos) >= self.max_recipients:
            self.on_reject("too_many_recipients")
            return f"452 4.5.3 Too many recipients (at most {self.max_recipients})"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        try:
            entry = await asyncio.to_thread(parse_email, envelope.original_content or envelope.content or b"",
                                            envelope.mail_from, list(envelope.rcpt_tos))
        except MalformedEmail as exc:
            self.on_reject("malformed_email")
            log.warning("email refused: %s", exc, extra={"reason": "malformed_email"})
            return f"554 5.6.0 Message refused: {str(exc)[:200]}"
        self.on_message(entry)
        return "250 2.0.0 Message accepted"


def server_factory(handler: Handler, *, hostname: str, max_message_bytes: int, max_sessions: int,
                   on_reject: Callable[[str], None]) -> Callable[[], SMTP]:
    """Protocol factory for loop.create_server: at most `max_sessions` at a time, the
    ones beyond are told 421 and closed before anything is read."""
    active = 0

    class LimitedSMTP(SMTP):
        counted = False

        def connection_made(self, transport) -> None:
            nonlocal active
            if active >= max_sessions:
                on_reject("too_many_sessions")
                transport.write(b"421 4.3.2 Too many concurrent sessions, try again later\r\n")
                transport.close()
                return
            active += 1
            self.counted = True
            super().connection_made(transport)

        def connection_lost(self, exc) -> None:
            nonlocal active
            if not self.counted:
                return
            active -= 1
            super().connection_lost(exc)

    def factory() -> SMTP:
        return LimitedSMTP(handler, hostname=hostname, data_size_limit=max_message_bytes,
                           enable_SMTPUTF8=True, decode_data=False, timeout=60)

    return factory
