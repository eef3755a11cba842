"""Notification URLs: which ones the server can use, and how one is shown in a log without its secrets.

http(s) URLs are webhooks (a JSON POST); any other scheme must be one Apprise knows. Apprise is
imported only when such a URL is first checked or shown (~0.15 s, once): most servers never need it.
Stdlib only at import, so config.py can check NOTIFY_URLS with it.
"""
from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit, urlunsplit

WEBHOOK_SCHEMES = ("http", "https")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
# Path segments this long are taken for tokens (Slack, Feishu, WeCom webhooks carry theirs in the path).
SECRET_SEGMENT_CHARS = 16


def is_webhook(url: str) -> bool:
    return url.partition("://")[0].lower() in WEBHOOK_SCHEMES


def check_notify_url(url: str) -> str:
    """The URL unchanged, or ValueError saying why the server cannot send to it."""
    scheme, sep, rest = url.partition("://")
    if not sep or not rest or not _SCHEME.fullmatch(scheme):
        raise ValueError(f"{url!r} is not a URL (scheme://...)")
    if not is_webhook(url) and scheme.lower() not in _apprise_schemes():
        raise ValueError(f"{scheme}:// is neither http(s) nor a scheme Apprise knows "
                         f"(e.g. feishu://, dingtalk://, wecombot://, slack://, tgram://, mailto://)")
    return url


@functools.cache
def _apprise_schemes() -> frozenset[str]:
    import apprise

    return frozenset(s.lower() for s in apprise.NotificationManager().schemas())


def shown_url(url: str) -> str:
    """The URL with its password, query values and token-like path parts replaced by ***."""
    if not is_webhook(url):
        return _shown_apprise_url(url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.partition("://")[0] + "://***"
    host = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:***@" if parts.password else (f"{parts.username}@" if parts.username else "")
    path = "/".join("***" if len(s) >= SECRET_SEGMENT_CHARS else s for s in parts.path.split("/"))
    query = "&".join(f"{p.partition('=')[0]}=***" for p in parts.query.split("&") if p)
    return urlunsplit((parts.scheme, user + host, path, query, ""))


def _shown_apprise_url(url: str) -> str:
    """Apprise's own privacy form (it knows which parts of each service's URL are secret), less its
    query of default options."""
    import apprise

    plugin = apprise.Apprise.instantiate(url)
    return plugin.url(privacy=True).partition("?")[0] if plugin is not None else url.partition("://")[0] + "://***"
