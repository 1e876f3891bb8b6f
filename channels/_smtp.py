"""Opening an SMTP session, shared by the e-mail channel and the e-mail notifier (an internal helper)."""

from __future__ import annotations

import smtplib
import ssl
from typing import Any


def connect_smtp(config: Any, password: str | None) -> smtplib.SMTP:
    """A session to ``config.host``/``port`` with its ``security`` (ssl | starttls | none), ``ca_file``,
    ``timeout`` and ``username``, logged in when a user is set; closed again if any step fails."""
    context = ssl.create_default_context(cafile=config.ca_file)
    if config.security == "ssl":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout, context=context)
    else:
        smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
    try:
        smtp.ehlo()
        if config.security == "starttls":
            smtp.starttls(context=context)
            smtp.ehlo()
        if config.username:
            smtp.login(config.username, password or "")
    except BaseException:
        smtp.close()
        raise
    return smtp
