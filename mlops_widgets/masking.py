"""Masking secrets in every form they take in text: one place for the runner (notebooks, run
records, the index, errors) and the inference service (deployment kernel logs).

A secret rarely leaks verbatim only: an HTTP error prints the URL it requested (the key
URL-encoded), a basic-auth header or a token file holds it in base64, a JSON document escapes
its quotes and backslashes, a repr or an HTML table escapes others. `Masker(secrets)` knows each
of those forms and replaces any of them by `MASK`::

    masker = Masker([api_key])
    masker.mask(text) -> str           masker.mask_bytes(data) -> bytes
    masker.leaks(text_or_bytes) -> bool (the last check before writing)

The base64 forms are those of the secret inside any longer encoded text (each of the three
alignments of its bytes, standard and URL-safe alphabets), so `base64("user:" + key)` is caught
as well as `base64(key)`; they are used from BASE64_MIN_FORM characters on (shorter ones would
match by chance in ordinary text).

Which environment variables are credentials: `is_secret_name` (the word list, shared with custom
args and profiles) and `looks_like_credential` (wider: PASSWD, *_PASS, *_PWD, CREDENTIAL,
AUTH...), for deciding what a child process may inherit.

Bottom layer: imports nothing of ours but `secret_names`.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

from mlops_widgets.secret_names import is_secret_name

MASK = "********"
BASE64_MIN_FORM = 8
# Names that hold credentials without a word of the list (KEY, TOKEN, PASSWORD, SECRET, APIKEY).
_CREDENTIAL_NAME = re.compile(
    r"PASSWD|PASSPHRASE|CREDENTIAL|AUTH|COOKIE|SESSION_?ID|PRIVATE|_PASS$|^PASS_|_PWD$|^PASS$|_CRED$|_CREDS$"
)


def looks_like_credential(name: str) -> bool:
    """Whether an environment variable name looks like a credential: the word list, or a wider
    pattern (DB_PASSWD, WML_CREDENTIALS, SMTP_PASS, ORACLE_PWD, HTTP_AUTH...). Not PWD or
    OLDPWD (the shell's folders)."""
    return is_secret_name(name) or bool(_CREDENTIAL_NAME.search(name.upper()))


def _escaped(value: str) -> set[str]:
    """The forms a string takes inside JSON (ASCII or not), a Python repr and HTML text."""
    return {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        repr(value)[1:-1],
        html.escape(value),
        html.escape(value, quote=False),
    }


def _url_encoded(value: str) -> set[str]:
    """Percent-encoded forms: a path segment, a query value (space as +), lowercase hex."""
    forms = {quote(value, safe=""), quote(value), quote_plus(value)}
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), f) for f in forms}
    return forms


def _base64_forms(value: str) -> set[str]:
    """The characters base64 always produces for `value`'s bytes wherever they sit in a longer
    encoded text: for each alignment (0, 1 or 2 bytes before it), the characters whose six bits
    all come from the secret; standard and URL-safe alphabets."""
    raw = value.encode()
    forms: set[str] = set()
    for lead in range(3):
        encoded = base64.b64encode(b"\0" * lead + raw).decode()
        start = -(-8 * lead // 6)  # the first character holding no bit of the lead bytes
        end = 8 * (lead + len(raw)) // 6  # past the last character holding only secret bits
        form = encoded[start:end]
        if len(form) >= BASE64_MIN_FORM:
            forms |= {form, form.replace("+", "-").replace("/", "_")}
    return forms


def secret_forms(value: str) -> set[str]:
    """Every form of one secret that the masker looks for: plain, URL-encoded, base64
    (standard, URL-safe), each also escaped for JSON, repr and HTML, and JSON-escaped twice
    (a JSON document stored as a string in another)."""
    if not value:
        return set()
    forms: set[str] = set()
    for base in {value} | _url_encoded(value) | _base64_forms(value):
        for once in _escaped(base):
            forms |= {once, json.dumps(once)[1:-1]}
    return {f for f in forms if f}


class Masker:
    """Replaces every form (see `secret_forms`) of each secret by MASK, in text or bytes."""

    def __init__(self, secrets: Iterable[str], mask: str = MASK) -> None:
        forms: set[str] = set()
        for value in secrets:
            forms |= secret_forms(value)
        # Longest first: a secret containing another is masked whole.
        self.forms = sorted(forms, key=lambda f: (-len(f), f))
        self.mask_text = mask
        self._text = re.compile("|".join(map(re.escape, self.forms))) if self.forms else None
        self._bytes = re.compile(b"|".join(re.escape(f.encode()) for f in self.forms)) if self.forms else None

    def __bool__(self) -> bool:
        return bool(self.forms)

    def mask(self, text: str) -> str:
        """`text` with every form of every secret replaced by the mask."""
        return self._text.sub(self.mask_text, text) if self._text is not None else text

    def mask_bytes(self, data: bytes) -> bytes:
        """`data` (a log, a file) with every form's UTF-8 bytes replaced by the mask."""
        return self._bytes.sub(self.mask_text.encode(), data) if self._bytes is not None else data

    def leaks(self, data: str | bytes) -> bool:
        """Whether any form of any secret is in `data`."""
        if isinstance(data, str):
            return self._text is not None and self._text.search(data) is not None
        return self._bytes is not None and self._bytes.search(data) is not None
