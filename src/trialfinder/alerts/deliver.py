"""Delivering alert reports after a sync: a webhook (POST JSON) and e-mail (SMTP).

Why failures are reported, not raised: a sync has already committed its data; a receiver that is down
must not turn a good sync into a failed one. Each delivery says what happened in the sync's result, and
the items stay in the saved search's events (and RSS feed) either way.
"""

from __future__ import annotations

import os
import smtplib
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import orjson

from trialfinder.alerts import check_alert, is_empty
from trialfinder.store.base import Store


@dataclass(frozen=True)
class SmtpSettings:
    """Where e-mail goes out. From the environment: ``TRIALFINDER_SMTP_HOST``, ``_PORT`` (25),
    ``_FROM``, ``_USER``, ``_PASSWORD``, ``_STARTTLS`` (1 to upgrade the connection)."""

    host: str
    port: int = 25
    sender: str = "trialfinder@localhost"
    user: str | None = None
    password: str | None = None
    starttls: bool = False

    @classmethod
    def from_env(cls) -> SmtpSettings | None:
        host = os.environ.get("TRIALFINDER_SMTP_HOST")
        if not host:
            return None
        return cls(host=host, port=int(os.environ.get("TRIALFINDER_SMTP_PORT") or 25),
                   sender=os.environ.get("TRIALFINDER_SMTP_FROM") or "trialfinder@localhost",
                   user=os.environ.get("TRIALFINDER_SMTP_USER") or None,
                   password=os.environ.get("TRIALFINDER_SMTP_PASSWORD") or None,
                   starttls=os.environ.get("TRIALFINDER_SMTP_STARTTLS") in ("1", "true", "yes"))


def report_text(report: dict[str, Any], *, site: str | None = None) -> str:
    """A report in words, one line per study (the e-mail body)."""
    base = (site or "").rstrip("/")
    lines = [f"Saved search {report['name']!r} ({report['query']}), changes since {report.get('since')}:", ""]
    for kind, items in (("New", report["details"]["new"]), ("Changed", report["changed"]),
                        ("Gone", report["details"]["gone"])):
        for item in items:
            link = f" {base}/study/{item['nctId']}" if base else ""
            lines.append(f"{kind}: {item['nctId']} {item.get('title') or ''} -- {item['description']}{link}")
    return "\n".join(lines) + "\n"


def post_webhook(url: str, report: dict[str, Any], *, timeout: float = 10.0) -> str:
    """POST the report as JSON; returns ``"ok"`` or what went wrong."""
    request = urllib.request.Request(url, data=orjson.dumps(report), method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "trialfinder alerts"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 - the operator's URL
            return "ok" if 200 <= resp.status < 300 else f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except OSError as exc:
        return f"failed: {exc}"


def send_email(smtp: SmtpSettings, to: str, report: dict[str, Any], *, site: str | None = None) -> str:
    """Send the report by e-mail; returns ``"ok"`` or what went wrong."""
    n = len(report["new"]) + len(report["changed"]) + len(report["gone"])
    msg = EmailMessage()
    msg["Subject"] = f"trialfinder: {n} update{'s' if n != 1 else ''} for {report['name']}"
    msg["From"] = smtp.sender
    msg["To"] = to
    msg.set_content(report_text(report, site=site))
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=15) as conn:
            if smtp.starttls:
                conn.starttls()
            if smtp.user:
                conn.login(smtp.user, smtp.password or "")
            conn.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        return f"failed: {exc}"
    return "ok"


def deliver_all(store: Store, *, smtp: SmtpSettings | None = None, site: str | None = None) -> list[dict[str, Any]]:
    """Check every saved search that has a delivery set, and deliver the non-empty reports.

    Saved searches without delivery are left alone, so their next ``alerts check`` still reports
    everything since the person last looked."""
    out: list[dict[str, Any]] = []
    for doc in store.alerts():
        if not (doc.get("webhook") or doc.get("email")):
            continue
        report = check_alert(store, doc["name"])
        entry: dict[str, Any] = {"name": doc["name"], "new": len(report["new"]), "changed": len(report["changed"]),
                                 "gone": len(report["gone"])}
        if not is_empty(report):
            if doc.get("webhook"):
                entry["webhook"] = post_webhook(doc["webhook"], report)
            if doc.get("email"):
                entry["email"] = (send_email(smtp, doc["email"], report, site=site) if smtp is not None
                                  else "not sent: no SMTP settings (TRIALFINDER_SMTP_HOST)")
        out.append(entry)
    return out
