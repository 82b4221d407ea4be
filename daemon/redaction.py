"""Secrets masked in connection URLs, for logs and `relationd config`: one function for all.

A secret can sit in a URL's user info (``amqp://user:secret@host/``, with several hosts after it
in a multi-host PostgreSQL URL), in its query (``?password=``, ``?sslpassword=``, ``?passfile=``),
in a comma-separated list of URLs, or in a libpq ``key=value`` connection string.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

MASK = "***"
# A query parameter or libpq keyword is secret when its name holds one of these.
_SECRET_WORDS = ("pass", "pwd", "secret", "token", "credential")
# Another URL starts after a comma (a comma inside a multi-host netloc is followed by a host).
_NEXT_URL = re.compile(r",(?=\s*[A-Za-z][A-Za-z0-9+.-]*://)")
_URL = re.compile(r"^(?P<scheme>\s*[A-Za-z][A-Za-z0-9+.-]*://)(?P<rest>.*)$", re.DOTALL)
_KEYWORD = re.compile(r"(?P<key>[A-Za-z_][A-Za-z0-9_]*)(?P<eq>\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'|\S*)")


def _is_secret(name: str) -> bool:
    name = unquote(name).lower()
    return any(word in name for word in _SECRET_WORDS)


def _mask_query(query: str) -> str:
    out = []
    for item in query.split("&"):
        name, eq, value = item.partition("=")
        out.append(f"{name}={MASK}" if eq and value and _is_secret(name) else item)
    return "&".join(out)


def _mask_url(url: str) -> str:
    match = _URL.match(url)
    if match is None:
        return _mask_keywords(url)
    scheme, rest = match["scheme"], match["rest"]
    # The user info ends at the last '@' before the query: a password with an unescaped '/' or
    # '@' in it is masked whole rather than half shown.
    before_query = re.split(r"[?#]", rest, maxsplit=1)[0]
    userinfo, at, _ = before_query.rpartition("@")
    after = rest[len(userinfo) + len(at) :]
    if at and ":" in userinfo and userinfo.partition(":")[2]:
        userinfo = f"{userinfo.partition(':')[0]}:{MASK}"
    before_fragment, hash_, fragment = after.partition("#")
    hosts_path, q, query = before_fragment.partition("?")
    if q:
        query = _mask_query(query)
    if "=" in fragment:
        fragment = _mask_query(fragment)
    return f"{scheme}{userinfo}{at}{hosts_path}{q}{query}{hash_}{fragment}"


def _mask_keywords(text: str) -> str:
    """A libpq ``host=h password=secret`` connection string with its secret values masked."""
    return _KEYWORD.sub(
        lambda m: f"{m['key']}{m['eq']}{MASK}" if m["value"] and _is_secret(m["key"]) else m[0], text
    )


def redact(text: str) -> str:
    """``text`` (a URL, a comma-separated list of URLs, or a libpq connection string) with every
    password and other secret replaced by ``***``; everything else, hosts included, as it was."""
    return ",".join(_mask_url(part) for part in _NEXT_URL.split(text))


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact_urls(text: str) -> str:
    """Free text (a log message, an exception's) with every URL in it redacted."""
    if "://" not in text:
        return text

    def one(match: re.Match[str]) -> str:
        url = match[0].rstrip(",.;:)]}")  # punctuation after a URL in prose is not part of it
        return redact(url) + match[0][len(url) :]

    return _URL_IN_TEXT.sub(one, text)
