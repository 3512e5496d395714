"""The one secret detector: every string lineage stores passes through here first.

Three questions, answered in one place (docs/secrets.md has the rules with examples):

- *Is this name secret?* (`is_secret_name`): a param, tag, option, header or
  environment variable called ``password``, ``api_key``, ``--auth``, ``X-Api-Key``, …
- *What does this value look like?* (`mask_text`): free text is scanned for the
  shapes credentials take wherever they appear: URLs with a user or password, header
  lines (``Authorization: Bearer …``), ``name=value`` and ``"name": "value"`` pairs
  under a secret name, connection strings (``Password=…;``), command lines inside a
  string (``sh -c "curl -u bob:pw …"``, ``mysql -pPW``), private-key PEM blocks, and
  the token formats of well-known services (AWS, GitHub, Slack, Google, Stripe,
  JWTs, …).
- *How is it masked?* The secret part becomes ``***``; the name, flag, header or
  scheme stays, so the record still says that a password was given.

Masking is idempotent (masking a masked text changes nothing) and never needs the
original again. False positives are let through by name with ``LINEAGE_NOT_SECRET``
(comma-separated names, e.g. ``LINEAGE_NOT_SECRET=sort_key,max_tokens``).

This module imports nothing of lineage but the model, so every layer may use it.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from lineage.model import SECRET_MASK, env

__all__ = [
    "MASK",
    "NOT_SECRET_ENV",
    "SecretWarning",
    "find_secrets",
    "is_secret_name",
    "mask_argv",
    "mask_mapping",
    "mask_text",
    "mask_url",
    "mask_value",
    "warn_if_secret",
]

#: what a secret is replaced by
MASK = SECRET_MASK

#: the escape hatch: names (comma-separated) that look secret but are not
NOT_SECRET_ENV = "LINEAGE_NOT_SECRET"


class SecretWarning(UserWarning):
    """Text kept as given (an annotation: a person's statement) looks like it holds a
    secret. Raised as a warning, never an error: the text is recorded unchanged."""


# ---------------------------------------------------------------------------
# names

# Words that make a name secret whatever its value (a number included: a PIN is a
# password). Matched as a substring of the name with separators removed, so glued
# forms (dbpassword, APIKEY, x-api-key, hfToken's "accesstoken") count too.
_STRONG_SUBSTRINGS = (
    "password", "passwd", "passphrase", "secret", "credential", "apikey", "accesskey",
    "privatekey", "authtoken", "accesstoken", "refreshtoken", "bearertoken", "sessiontoken",
    "clientsecret", "authheader", "authorization", "signingkey", "encryptionkey", "masterkey",
)
# Whole words (split on separators and camelCase) that are secret whatever the value.
_STRONG_WORDS = frozenset({"pwd", "pw", "passin", "passout", "creds", "cred", "pat", "bearer"})
# Whole words that make a name secret for a text value, but not for a plain number or
# boolean: `max_tokens=100`, `num_keys=3`, `--auth-retries 2` are settings, not secrets.
_WEAK_WORDS = frozenset({"token", "tokens", "key", "keys", "auth", "pass", "cookie", "cookies", "sig",
                         "signature", "sas", "hmac"})
# Words under which only a credential-shaped value (long, mixed, high entropy) is secret.
_SUSPECT_WORDS = frozenset({"session", "sid", "dsn", "salt", "nonce", "private", "license", "licence", "access"})
# A name whose last word is one of these names *where* or *what kind* of secret, not the
# secret itself: `--key-file path/key.pem`, `token_type=bpe`, `password_env=DB_PW`,
# `key_column=id`. (Its value is still scanned for secret shapes.)
_QUALIFIERS = frozenset({"file", "files", "path", "paths", "dir", "directory", "name", "names", "type", "types",
                         "column", "columns", "col", "field", "fields", "len", "length", "size", "count", "limit",
                         "env", "var", "variable", "location", "format", "mode", "policy", "ttl", "timeout",
                         "retries", "expiry", "algorithm", "algo", "provider", "method", "scheme"})
# A name that ends in one of these names an error, not a credential (`KeyError: 'x'`).
_NOT_A_NAME_SUFFIXES = ("error", "exception", "warning")

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[^A-Za-z0-9]+")


def _words(name: str) -> list[str]:
    if name.isascii() and name.islower() and name.replace("_", "").isalnum():
        # snake_case (most params' and tags' names): no camelCase to split, no capital
        # to lower, "_" the only separator; the same words as the two regular
        # expressions below, for a third of their cost (tests/test_secrets_fastpath.py)
        words = name.split("_")
        return words if "" not in words else [w for w in words if w]
    return _words_of_any(name)


def _words_of_any(name: str) -> list[str]:
    """`_words` of any name, by the rules themselves."""
    return [w.lower() for w in _SEPARATORS.split(_CAMEL.sub("_", name)) if w]


def _normal(name: str) -> str:
    return "_".join(_words(name))


def _allowed_names(raw: str) -> frozenset[str]:
    """The names `NOT_SECRET_ENV` lets through, when its value is ``raw``."""
    if raw != _allowed[0]:  # (parsed once per value of the setting)
        _allowed[:] = [raw, frozenset(_normal(n) for n in raw.split(",") if n.strip())]
    return _allowed[1]  # type: ignore[return-value]


_allowed: list[str | frozenset[str]] = ["", frozenset()]


def _name_class(name: str) -> str | None:
    """``"strong"``, ``"weak"``, ``"suspect"`` or None for a name (see the word lists).

    Remembered per name and `NOT_SECRET_ENV` value (the one setting it reads): the
    same param and tag names come back on every call (issue 16: two regular
    expressions and a dozen word tests per logged param)."""
    setting = env(NOT_SECRET_ENV)  # (read once; `env`: the unset setting without an exception)
    key = (name, setting)
    known = _name_classes.get(key, _UNKNOWN)  # (not try/except: a new name is common, and raising costs)
    if known is not _UNKNOWN:
        return known  # type: ignore[return-value]
    out = _classify_name(name, _allowed_names(setting))
    if len(_name_classes) >= _MEMO_SIZE:
        _name_classes.clear()
    _name_classes[key] = out
    return out


_name_classes: dict[tuple[str, str], str | None] = {}
_UNKNOWN = object()  # (not yet classified: None is an answer)


def _classify_name(name: str, allowed: frozenset[str]) -> str | None:
    """`_name_class` itself, without the memo; ``allowed``: the names let through."""
    words = _words(name)
    if not words:
        return None
    if words[-1].endswith(_NOT_A_NAME_SUFFIXES) or (len(words) > 1 and words[-1] in _QUALIFIERS):
        return None
    if allowed and "_".join(words) in allowed:
        return None
    if _STRONG_GLUED.search("".join(words)) or not _STRONG_WORDS.isdisjoint(words):
        return "strong"
    if not _WEAK_WORDS.isdisjoint(words):
        return "weak"
    if not _SUSPECT_WORDS.isdisjoint(words):
        return "suspect"
    return None


_STRONG_GLUED = re.compile("|".join(_STRONG_SUBSTRINGS))


def is_secret_name(name: str) -> bool:
    """True when a value under ``name`` is masked unless it is a number or boolean.

    True for ``password``, ``api_key``, ``--db-password``, ``X-Api-Key``, ``pwd``,
    ``auth_header``, ``creds``, ``AWS_SECRET_ACCESS_KEY``, ``hfToken``; false for
    ``monkey``, ``keep_going``, ``tokenizer``, ``lr``, and for any name listed in
    ``LINEAGE_NOT_SECRET``.
    """
    return _name_class(name) in ("strong", "weak")


_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_PLAIN_WORDS = frozenset({"true", "false", "none", "null", "yes", "no", "on", "off", ""})


def _is_setting(value: str) -> bool:
    """A number or a boolean word: what a setting holds, not a credential."""
    v = value.strip().strip("\"'")
    return v.lower() in _PLAIN_WORDS or (bool(_NUMBER.fullmatch(v)) and len(v) <= 12)


def _entropy(s: str) -> float:
    n = len(s)
    counts: dict[str, int] = {}
    for c in s:
        counts[c] = counts.get(c, 0) + 1
    return -sum(k / n * math.log2(k / n) for k in counts.values()) if n else 0.0


def _credential_shaped(value: str) -> bool:
    """Long, mixed letters and digits, high entropy: a generated secret's shape."""
    v = value.strip("\"'")
    if len(v) < 16 or " " in v or v == MASK:
        return False
    has = sum(bool(re.search(p, v)) for p in ("[a-z]", "[A-Z]", "[0-9]"))
    return has >= 2 and _entropy(v) >= 3.5


def _secret_value_under(name: str, value: str) -> bool:
    """Whether a text ``value`` under ``name`` is to be masked (the name rule)."""
    cls = _name_class(name)
    if cls is None or value.strip("\"'") in ("", MASK):
        return False
    if cls == "strong":
        return value.strip().strip("\"'").lower() not in _PLAIN_WORDS
    if cls == "weak":
        return not _is_setting(value)
    return _credential_shaped(value)  # suspect


# ---------------------------------------------------------------------------
# URLs

# scheme:// at the start: what makes a string a URL here
_URL_START = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
# scheme://rest, for finding URLs inside a longer string (an option's value, say)
_EMBEDDED_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>]+")
# Schemes where the user name is an account on the server, not a credential
# (ssh://git@github.com/...). Everywhere else a lone user name is as likely to be a
# token (https://TOKEN@github.com/...), so it goes.
_USER_IS_NOT_SECRET = frozenset({"ssh", "git+ssh", "ssh+git", "sftp", "scp", "rsync"})
# Query parameters that carry credentials but whose names say so only by convention:
# signed-URL signatures (S3, GCS, Azure SAS `sig`) and OAuth codes.
_SECRET_QUERY_NAMES = frozenset({"sig", "signature", "auth", "authorization", "code", "session", "key"})


def _secret_query_value(name: str, value: str) -> bool:
    # A query value is always text, so a weak name masks even a number (`?token=1`).
    cls = _name_class(name)
    bare = name.lower()
    if cls in ("strong", "weak") or bare in _SECRET_QUERY_NAMES or "signature" in bare:
        return True
    return cls == "suspect" and _credential_shaped(value)


def _mask_query(query: str) -> str:
    """``query`` with the values of secret-looking parameters replaced by ``***``.

    Works on the raw text, so every other parameter stays byte-for-byte as it was.
    """
    if not query:
        return query
    parts = []
    for part in query.split("&"):
        name, eq, value = part.partition("=")
        if eq and value and value != MASK and _secret_query_value(name, value):
            part = f"{name}={MASK}"
        parts.append(part)
    return "&".join(parts)


# host[:port] as it may stand between the userinfo and the path
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[^\s/?#@\[\]:]+)(?::[0-9]+)?")


def _valid_host(host: str) -> bool:
    return _HOST.fullmatch(host) is not None


def _cut_userinfo(url: str) -> str | None:
    """``url`` with everything between ``://`` and the host removed, the host being
    the first text after an ``@`` that is a valid host[:port] ending the authority;
    None when there is no such ``@``."""
    scheme, _, rest = url.partition("://")
    for m in re.finditer("@", rest):
        after = rest[m.end() :]
        h = _HOST.match(after)
        if h and h.end() > 0 and (h.end() == len(after) or after[h.end()] in "/?#"):
            return f"{scheme}://{after}"
    return None


# Slack incoming webhooks carry their secret in the path
_SLACK_HOOK = re.compile(r"(hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/)[^\s\"'<>?#]+")


def mask_url(url: str) -> str:
    """Return ``url`` without credentials.

    - ``https://user:pass@host/x.git`` and ``https://TOKEN@host/x`` -> ``https://host/...``
      (any scheme: s3, gs, postgresql, ...); for ssh-like schemes
      (``ssh://git@host/...``) the user name is kept and only a password dropped;
    - scp-style ``git@github.com:org/repo.git`` is returned unchanged (``git`` is an
      account, not a credential), unless it carries a ``user:password@``;
    - query (and fragment) parameters whose names look secret (``token``,
      ``X-Amz-Signature``, Azure's ``sig``, ...) keep their name, with the value ``***``;
      a Slack webhook's path secret becomes ``***``;
    - text that is not a URL has the URLs inside it cleaned the same way.

    A valid URL percent-encodes ``/ ? # @ :`` inside a user or password; such URLs
    are always stripped exactly. Raw pastes are handled as far as they can be told
    apart from a valid URL: a raw ``@``, ``:`` or ``[`` anywhere, and a raw ``/ ? #``
    that leaves an impossible host (an AWS secret in ``s3://KEY:SECRET@bucket``).
    What cannot be recognised is a raw password that reads as a valid URL by itself
    (``user:123/x@host`` is also host ``user``, port 123, path ``/x@host``).
    """
    if not _URL_START.match(url):
        return _strip_urls_in(url)  # not a URL, or text with URLs inside it
    try:
        parts = urlsplit(url)
    except ValueError:
        # An unbalanced '[' (urllib takes it for a broken IPv6 literal), typically
        # inside a raw password: drop everything up to the host's '@'.
        cut = _cut_userinfo(url)
        return url if cut is None else mask_url(cut)
    netloc = parts.netloc
    userinfo, at, host = netloc.rpartition("@")
    cut_short = not _valid_host(host) if at else (bool(netloc) and not _valid_host(netloc))
    if cut_short:
        # A raw '/', '?' or '#' in a password ended the authority early, leaving
        # something that is no host[:port]: find the real host further on.
        cut = _cut_userinfo(url)
        if cut is not None:
            return mask_url(cut)
    if at:
        # rpartition: a raw '@' inside the password belongs to the userinfo
        user = userinfo.partition(":")[0]  # the password, if any, is never kept
        if parts.scheme.lower() in _USER_IS_NOT_SECRET and user and _name_class(user) is None:
            netloc = f"{user}@{host}"
        else:
            netloc = host
    query = _mask_query(parts.query)
    fragment = _mask_query(parts.fragment) if "=" in parts.fragment else parts.fragment
    path = _SLACK_HOOK.sub(rf"\g<1>{MASK}", f"{netloc}{parts.path}")[len(netloc):] if "slack" in netloc else parts.path
    if (netloc, path, query, fragment) == (parts.netloc, parts.path, parts.query, parts.fragment):
        return url  # untouched: keep the caller's exact text
    # Assembled by hand: urlunsplit drops the '//' of an empty host (postgresql:///db).
    out = f"{url[: len(url.split('://', 1)[0])]}://{netloc}{path}"
    if query:
        out += f"?{query}"
    if fragment:
        out += f"#{fragment}"
    return out


def _strip_scp_credentials(text: str) -> str:
    # scp-like `user@host:path` has no password slot; `user:pass@host:path` is not
    # valid scp syntax but is what a careless paste looks like, so it is cleaned.
    m = re.match(r"^([^@/\s]+)@([\w.\-]+):(.*)$", text)
    if m and ":" in m.group(1):
        user = m.group(1).partition(":")[0]
        return f"{user}@{m.group(2)}:{m.group(3)}"
    return text


def _strip_urls_in(text: str) -> str:
    """``text`` with credentials stripped from every URL inside it."""
    if "://" not in text:
        return _strip_scp_credentials(text)
    return _EMBEDDED_URL.sub(lambda m: mask_url(m.group(0)), text)


# ---------------------------------------------------------------------------
# shapes of secrets in free text

# Token formats of well-known services: (kind, pattern). The whole match is masked.
_TOKEN_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(p)) for kind, p in (
        ("AWS access key id", r"(?<![A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])"),
        ("GitHub token", r"(?<![A-Za-z0-9_])gh[pousr]_[A-Za-z0-9]{30,}"),
        ("GitHub token", r"(?<![A-Za-z0-9_])github_pat_[A-Za-z0-9_]{22,}"),
        ("GitLab token", r"(?<![A-Za-z0-9_])glpat-[A-Za-z0-9_\-]{20,}"),
        ("Slack token", r"(?<![A-Za-z0-9])xox[abposr]-[A-Za-z0-9\-]{10,}"),
        ("Google API key", r"(?<![A-Za-z0-9_])AIza[0-9A-Za-z_\-]{35}"),
        ("Stripe key", r"(?<![A-Za-z0-9_])(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}"),
        ("Stripe webhook secret", r"(?<![A-Za-z0-9_])whsec_[0-9A-Za-z]{16,}"),
        ("OpenAI/Anthropic key", r"(?<![A-Za-z0-9_\-])sk-(?:proj-|ant-[a-z0-9]+-)?[A-Za-z0-9_\-]{20,}"),
        ("Hugging Face token", r"(?<![A-Za-z0-9_])hf_[A-Za-z0-9]{30,}"),
        ("npm token", r"(?<![A-Za-z0-9_])npm_[A-Za-z0-9]{36}"),
        ("PyPI token", r"(?<![A-Za-z0-9_])pypi-AgE[A-Za-z0-9_\-]{40,}"),
        ("SendGrid key", r"(?<![A-Za-z0-9_])SG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}"),
        ("JWT", r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
    )
)

# A private key in PEM form: the body goes, the armour stays (so the record says a key
# was there). An unterminated block is masked to the end of the text.
_PEM = re.compile(
    r"(-----BEGIN (?P<label>[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----)(?:(?!-----END).)*?(?:(-----END (?P=label)-----)|\Z)",
    re.DOTALL,
)

# An AWS secret access key: 40 characters of base64. Anywhere, not only under a name,
# so it must look generated: mixed case and digits, high entropy, not hex (a git
# commit is 40 hex digits) and not a path of words.
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")


def _aws_secret_shaped(s: str) -> bool:
    if re.fullmatch(r"[0-9a-fA-F]+", s) or s.startswith("/") or "//" in s or s.count("/") > 3:
        return False
    classes = sum(bool(re.search(p, s)) for p in ("[a-z]", "[A-Z]", "[0-9]"))
    return classes == 3 and _entropy(s) >= 4.2


# HTTP auth schemes whose credential follows the scheme word
# (only a credential-looking word counts: "Basic authentication failed" stays)
_AUTH_SCHEME = re.compile(r"\b([Bb]earer|Basic|Token|Digest)(\s+)(?!\*\*\*)([A-Za-z0-9._~+/=\-]{8,})")


def _auth_credential(word: str) -> bool:
    return bool(re.search(r"[0-9._~+/=\-]", word)) or _credential_shaped(word)

# A name then ':' or '=' then a value. The name may be quoted ("password": "x"), the
# value quoted or bare. A bare value ends at whitespace, a quote, ';', '&' or ','.
_NAME = r"[A-Za-z_][A-Za-z0-9_.\-]*"
_PAIR = re.compile(
    rf"(?P<pre>(?:^|(?<=[\s\"'`(\[{{;,&?|])))(?P<q>[\"']?)(?P<name>{_NAME})(?P=q)(?P<sep>\s*(?:=|:)\s*)"
    r"(?P<value>\"[^\"\n]*\"|'[^'\n]*'|[^\s\"';,&]+)"
)
# a header line's value runs to the end of the line (or of the quoted argument)
_HEADER_NAMES = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})

# Command-line options inside a string (`sh -c "…"`): --name VALUE or --name=VALUE
_FLAG_IN_TEXT = re.compile(
    r"(?P<pre>(?:^|(?<=[\s\"'`(]))(?P<flag>--?[A-Za-z][A-Za-z0-9_\-]*)(?P<sep>\s+|=))"
    r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s\"';|&]+)"
)
# curl/wget-style `-u user:password`, and mysql-style `-pPASSWORD`, inside a string
_USER_PASS_IN_TEXT = re.compile(
    r"(?P<pre>\b(?:curl|wget|http|https|xh|httpie|lftp)\b[^\n|;&]*?\s(?:-u|--user|--proxy-user|-U)\s+(?P<q>[\"']?)"
    r"[^:\s\"']+:)(?P<value>[^\s\"']+)"
)
_MYSQL_IN_TEXT = re.compile(r"(?P<pre>\b(?:mysql\w*|mariadb[\w-]*)\b[^\n|;&]*?\s-p)(?P<value>[^\s\"']+)")


def _mask_pair(m: re.Match[str]) -> str | None:
    name, sep, value = m.group("name"), m.group("sep"), m.group("value")
    whole = m.group(0)
    colon = ":" in sep
    if value.strip("\"'") == MASK or (value.startswith(("//", "/")) and colon):
        return None  # already masked; or `scheme://…` (URLs are handled on their own)
    if colon and not m.group("q"):
        # `Name: value` unquoted is how headers and YAML read, but also how error
        # messages do (`KeyError: 'lr'`): a weak name needs a credential-shaped value.
        cls = _name_class(name)
        if name.lower() in _HEADER_NAMES:
            return None  # Authorization/Cookie: handled by the header rule
        if cls is None:
            return None
        if cls != "strong" and "-" not in name and not _credential_shaped(value):
            return None
    elif not _secret_value_under(name, value):
        return None
    if name.lower() in _HEADER_NAMES:
        return None
    quote = value[0] if value[:1] in "\"'" and value[-1:] == value[:1] and len(value) > 1 else ""
    return whole[: len(whole) - len(value)] + f"{quote}{MASK}{quote}"


# Header lines whose whole value is a credential: `Authorization: Basic x`,
# `Cookie: a=b; c=d` (to the end of the line or of the quoted text).
_HEADER_LINE = re.compile(
    r"(?P<pre>\b(?P<name>Authorization|Proxy-Authorization|Cookie|Set-Cookie)\s*+:\s*+"
    r"(?:(?:Bearer|Basic|Token|Digest|Negotiate|NTLM|ApiKey|Key|AWS4-HMAC-SHA256)\s++)?+)"
    r"(?P<value>(?!\*\*\*)[^\s\"'][^\n\"']*)",
    re.IGNORECASE,
)


def _mask_flag(m: re.Match[str]) -> str | None:
    flag, value = m.group("flag"), m.group("value")
    if value.startswith("-") or value.strip("\"'") == MASK:
        return None
    if not _secret_value_under(flag.lstrip("-"), value):
        return None
    quote = value[0] if value[:1] in "\"'" and value[-1:] == value[:1] and len(value) > 1 else ""
    return f"{m.group('pre')}{quote}{MASK}{quote}"


def _sub_overlapping(pattern: re.Pattern[str], text: str, fn: Callable[[re.Match[str]], str | None]) -> str:
    """``pattern.sub(fn, text)``, except that where ``fn`` declines (None) the search
    resumes inside the match: in ``failed: password=x`` the pair ``failed: …`` is no
    secret, but the ``password=x`` inside its value is."""
    out: list[str] = []
    pos = 0
    while True:
        m = pattern.search(text, pos)
        if m is None:
            break
        new = fn(m)
        if new is None:
            out.append(text[pos : m.start() + 1])
            pos = m.start() + 1
            if pos > len(text):
                break
            continue
        out.append(text[pos : m.start()])
        out.append(new)
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


def mask_text(text: str) -> str:
    """Return ``text`` with every secret found in it replaced by ``***``.

    Looks for (in this order): private-key PEM blocks; URLs with credentials or secret
    query parameters; header lines (``Authorization: Bearer …``, ``Cookie: …``);
    command lines inside the text (``--password X``, ``curl -u user:pw``,
    ``mysql -pPW``); ``name=value`` / ``name: value`` / ``"name": "value"`` pairs under
    a secret name (connection strings' ``Password=…;`` included); ``Bearer``/``Basic``
    credentials; and the token formats of known services. Text with none of these is
    returned unchanged (the same object).
    """
    if not isinstance(text, str) or not text:
        return text
    if len(text) < 40 and _NUMBER.fullmatch(text):
        # a number (a param's value, most often) has none of the shapes below: they
        # all need letters, a separator or 40 characters (`_AWS_SECRET`)
        return text
    if not _may_hold_secret(text):
        return text
    if len(text) > _MEMO_MAX_LEN:
        return _mask_text(text)
    # The same short texts come back on every run (argv, names, URIs, params): their
    # answer is remembered, keyed on the one setting it depends on (issue 16: 30
    # calls of ~30 regular expressions each per recorded pipeline)
    key = (text, env(NOT_SECRET_ENV))
    out = _memo.get(key)
    if out is None:
        out = _mask_text(text)
        if len(_memo) >= _MEMO_SIZE:
            _memo.clear()
        _memo[key] = out
    return text if out == text else out


_MEMO_MAX_LEN = 1000
_MEMO_SIZE = 4096
_memo: dict[tuple[str, str], str] = {}


# What every rule of `_mask_text` needs to find anything (issue 16: dataset names and
# URIs are new on every call, so the memo misses, and most text holds none of these):
# - a URL's credentials, a secret query or fragment parameter, a Slack hook, scp's
#   `user:pw@host`: '@', '=' or "slack";
# - a `name=value` / `name: value` pair: '=' or a ':' that is not a URL's "://"
#   (a pair whose separator is that colon has a value starting with '//', which
#   `_mask_pair` declines); header lines: "authorization" or "cookie", in any case
#   (the same case-insensitive match the rule makes, Unicode case folding included);
# - options, `curl -u`, `mysql -p` inside a string: a '-' at the start or after
#   whitespace, a quote or '(' (where each of those rules has its first '-');
# - PEM blocks, `Bearer`-style schemes, the token formats (their literal prefixes) and
#   AWS secrets (a run of 40 of their characters).
# Text with none of them is what the rule chain returns untouched.
# tests/test_secrets.py compares the two on random and secret-built text.
_TRIGGER = re.compile(
    r"@|=|:(?!//)|slack|PRIVATE KEY|(?i:authorization|cookie)"
    r"|(?:^|[\s\"'`(])-"
    r"|[Bb]earer|Basic|Token|Digest"
    r"|A(?:KIA|SIA|GPA|IDA|ROA|IPA|NPA|NVA|BIA|CCA|Iza)|gh[pousr]_|github_pat_|glpat-|xox[abposr]-"
    r"|[sr]k_(?:live|test)_|whsec_|sk-|hf_|npm_|pypi-AgE|SG\.|eyJ"
)
_AWS_RUN = re.compile(r"[A-Za-z0-9/+]{40}")


def _may_hold_secret(text: str) -> bool:
    """False when no rule of `_mask_text` can match in ``text`` (it would return
    ``text`` unchanged); True when the rules must look."""
    return _TRIGGER.search(text) is not None or (len(text) >= 40 and _AWS_RUN.search(text) is not None)


def _mask_text(text: str) -> str:
    """`mask_text` itself, without the memo or the pre-screen (`_may_hold_secret`):
    the reference the fast path is tested against."""
    out = text
    if "PRIVATE KEY" in out:
        out = _PEM.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3) or ''}", out)
    out = _strip_urls_in(out)
    out = _HEADER_LINE.sub(lambda m: m.group("pre") + MASK, out)
    if "-" in out:
        out = _USER_PASS_IN_TEXT.sub(lambda m: m.group("pre") + MASK, out)
        out = _MYSQL_IN_TEXT.sub(lambda m: m.group("pre") + MASK, out)
        out = _sub_overlapping(_FLAG_IN_TEXT, out, _mask_flag)
    if "=" in out or ":" in out:
        out = _sub_overlapping(_PAIR, out, _mask_pair)
    out = _AUTH_SCHEME.sub(lambda m: m.group(1) + m.group(2) + (MASK if _auth_credential(m.group(3)) else m.group(3)), out)
    for _kind, pattern in _TOKEN_SHAPES:
        out = pattern.sub(MASK, out)
    out = _AWS_SECRET.sub(lambda m: MASK if _aws_secret_shaped(m.group(0)) else m.group(0), out)
    return text if out == text else out


def find_secrets(text: str) -> list[str]:
    """What `mask_text` would mask in ``text``: a short description per kind found
    (``"GitHub token"``, ``"a credential"``), empty when nothing looks secret."""
    if not isinstance(text, str) or mask_text(text) == text:
        return []
    kinds = [kind for kind, p in _TOKEN_SHAPES if p.search(text)]
    return sorted(set(kinds)) or ["a credential"]


def warn_if_secret(text: str, what: str) -> list[str]:
    """Warn (`SecretWarning`) when ``text`` looks like it holds a secret; returns the
    kinds found. For text kept as given, such as a person's annotation."""
    kinds = find_secrets(text)
    if kinds:
        warnings.warn(f"{what} looks like it contains a secret ({', '.join(kinds)}); it is recorded as given "
                      "(redact it with `lineage redact` if it should not be kept)", SecretWarning, stacklevel=3)
    return kinds


# ---------------------------------------------------------------------------
# values, mappings, command lines


def mask_value(name: str, value: Any) -> Any:
    """``value`` as it may be recorded under ``name``.

    Under a secret name (`is_secret_name`) a text becomes ``***``; so does a number
    under a strong name (``password``, ``pin``, ``secret``). A number or boolean under
    a weak name (``max_tokens=100``, ``num_keys=3``) is a setting and is kept. Other
    strings go through `mask_text`; mappings are masked key by key; lists item by item,
    and a list of strings with an option among them as the command line it is
    (`mask_argv`: ``["--token", "X"]``).
    """
    cls = _name_class(str(name))
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return MASK if cls == "strong" else value
    if isinstance(value, Mapping):
        if cls == "strong":  # everything under `credentials: {...}` is the secret
            return {k: mask_value(str(name), v) for k, v in value.items()}
        return mask_mapping(value)
    if isinstance(value, (list, tuple)):
        items = list(value)
        if any(isinstance(v, str) and v.startswith("-") for v in items) and all(isinstance(v, str) for v in items):
            items = mask_argv(items)  # a command line (`sys.argv`, overrides): `--api-key X` masks X
        return [mask_value(name, v) for v in items]
    if isinstance(value, str):
        if value == MASK:
            return value
        if cls in ("strong", "weak"):
            return MASK if _secret_value_under(str(name), value) else value
        if cls == "suspect" and _credential_shaped(value):
            return MASK
        return mask_text(value)
    return value


def mask_mapping(mapping: Mapping[Any, Any]) -> dict[Any, Any]:
    """A copy of ``mapping`` (params, tags, a config) with `mask_value` applied to
    every value, nested mappings included. The caller's mapping is not changed."""
    return {key: mask_value(str(key), value) for key, value in mapping.items()}


# NAME=VALUE: an option with its value (--api-key=X), a -p/--param pair
# (password=X), or an environment-style assignment (TOKEN=abc)
_ASSIGNMENT = re.compile(r"^(?P<name>[^=\s]+)=(?P<value>.*)$", re.DOTALL)
# programs whose `-pPASSWORD` (glued) is a password
_MYSQL_LIKE = re.compile(r"^(?:mysql\w*|mariadb[\w-]*)$")
# programs whose `-u USER:PASSWORD` carries a password
_CURL_LIKE = frozenset({"curl", "wget", "http", "https", "xh", "lftp"})
# options whose next argument is an HTTP header
_HEADER_FLAGS = frozenset({"-H", "--header", "--proxy-header"})
_USER_FLAGS = frozenset({"-u", "--user", "--proxy-user", "-U"})


def mask_argv(argv: Sequence[str]) -> list[str]:
    """Return a copy of a command line safe to record.

    - ``--api-key X``, ``--auth X``, ``--pwd X`` -> the next argument becomes ``***``
      (unless it is itself an option, or a number under a weak name);
    - ``--api-key=X``, ``password=X`` (as in ``-p password=X``), ``TOKEN=abc`` ->
      the value becomes ``***``;
    - ``-H "Authorization: Bearer X"`` -> ``-H "Authorization: Bearer ***"``;
    - ``curl -u user:pw`` -> ``curl -u user:***``; ``mysql -pPW`` -> ``mysql -p***``;
      ``sshpass -p PW`` -> ``sshpass -p ***``;
    - every argument also goes through `mask_text` (URLs, token shapes, and command
      lines inside ``sh -c "…"``).
    """
    # Every run of a process records the same argv: its answer is remembered like
    # `mask_text`'s (issue 16: ~5% of a run's start in a batch)
    key = (tuple(str(a) for a in argv), env(NOT_SECRET_ENV))
    known = _argv_memo.get(key)
    if known is None:
        known = _mask_argv(key[0])
        if len(_argv_memo) >= _MEMO_SIZE:
            _argv_memo.clear()
        _argv_memo[key] = known
    return list(known)


_argv_memo: dict[tuple[tuple[str, ...], str], tuple[str, ...]] = {}


def _mask_argv(argv: Sequence[str]) -> tuple[str, ...]:
    out: list[str] = []
    pending: str | None = None  # the option whose value comes next
    program = ""
    for i, raw in enumerate(argv):
        arg = str(raw)
        base = os.path.basename(arg)
        if i == 0 or (out and out[-1] in ("sudo", "env", "exec", "nohup", "time") and not arg.startswith("-")):
            program = base
        if pending is not None:
            flag, pending = pending, None
            if flag in _HEADER_FLAGS:
                out.append(mask_text(arg))
                continue
            if flag in _USER_FLAGS:
                user, colon, _pw = arg.partition(":")
                out.append(f"{user}:{MASK}" if colon else mask_text(arg))
                continue
            if flag == "-p":  # sshpass / `docker login -p`
                out.append(MASK)
                continue
            if not arg.startswith("--") and _secret_value_under(flag.lstrip("-"), arg):
                out.append(MASK)
                continue
            if not arg.startswith("-"):
                out.append(mask_text(arg))
                continue
        if _MYSQL_LIKE.match(program) and arg.startswith("-p") and len(arg) > 2 and not arg.startswith("--"):
            out.append(f"-p{MASK}")
            continue
        m = _ASSIGNMENT.match(arg)
        # `https://host/x?token=1` is a URL with a query, not an assignment to a name
        if m and "://" not in m.group("name") and re.fullmatch(r"-{0,2}[A-Za-z_][\w.\-]*", m.group("name")):
            name, value = m.group("name"), m.group("value")
            if _secret_value_under(name.lstrip("-"), value):
                out.append(f"{name}={MASK}")
            else:
                out.append(f"{name}={mask_text(value)}")
            continue
        if arg in _HEADER_FLAGS or (arg in _USER_FLAGS and program in _CURL_LIKE):
            pending = arg
            out.append(arg)
            continue
        if arg == "-p" and (program == "sshpass" or "login" in out):
            pending = arg
            out.append(arg)
            continue
        if arg.startswith("-") and len(arg) > 1 and not _NUMBER.fullmatch(arg) and _name_class(arg.lstrip("-")) is not None:
            pending = arg
            out.append(arg)
            continue
        out.append(mask_text(arg))
    return tuple(out)
