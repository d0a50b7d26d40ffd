"""Masking secrets in every form they take in text: one place for the runner (notebooks, run
records, the index, errors) and the inference service (deployment kernel logs).

A secret rarely leaks verbatim only: an HTTP error prints the URL it requested (the key
percent-encoded as Python, `requests` or JavaScript do it), a basic-auth header or a token file
holds it in base64, a JSON document escapes its quotes, backslashes and non-ASCII letters (in
either case of hex), a repr, `ascii()` or a bytes repr escapes others, HTML escapes with named or
numeric entities, and text may come back NFC- or NFD-normalised. `Masker(secrets)` knows each of
those forms and replaces any of them by `MASK`::

    masker = Masker([api_key])
    masker.mask(text) -> str           masker.mask_bytes(data) -> bytes
    masker.leaks(text_or_bytes) -> bool (the last check before writing)

The base64 forms are those of the secret inside any longer encoded text (each of the three
alignments of its bytes, standard and URL-safe alphabets), so `base64("user:" + key)` is caught
as well as `base64(key)`; they are used from BASE64_MIN_FORM characters on (shorter ones would
match by chance in ordinary text). A secret too short for all three (under 9 bytes) is found in
base64 by decoding: a whole base64 word whose bytes are exactly the secret, or `user:secret`
(basic auth), is masked; nothing else is, so no chance match.

Which environment variables are credentials: `is_secret_name` (the word list, shared with custom
args and profiles) and `looks_like_credential` (wider: PASSWD, SSHPASS, *_PAT, BEARER, JWT,
WEBHOOK, CREDENTIAL, AUTH... see `_CREDENTIAL_NAME`), for deciding what a child process may
inherit; `url_credentials` finds the credential part of a URL value (a password in its user
part, a credential-named query parameter), which makes its variable a credential too
(`is_credential`).

Bottom layer: imports nothing of ours but `secret_names`.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import AnyStr
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

from mlops_widgets.secret_names import is_secret_name

MASK = "********"
DECLARED_ENV = "MLOPS_KERNEL_CREDENTIALS"
BASE64_MIN_FORM = 8
# Names that hold credentials without a word of the list (KEY, TOKEN, PASSWORD, SECRET, APIKEY),
# matched anywhere in the upper-cased name.
_CREDENTIAL_NAME = re.compile(
    r"PASSWD|PASSPHRASE|PASSCODE|CREDENTIAL|AUTH|COOKIE|SESSION_?ID|PRIVATE|BEARER|JWT|WEBHOOK"
    r"|CONNECTION_?STRING|_DSN$|^DSN$|_PWD$|^PASS_|_CREDS?$|^SSH_AUTH_SOCK$"
)
# ... and names holding one of these as a word (between underscores, or the whole name).
_CREDENTIAL_WORDS = frozenset({"PASS", "PAT", "PWD", "CRED", "CREDS", "OTP", "SAS", "SIG"})
# Words ending in PASS that are no password (SSHPASS, DBPASS and the like are).
_NOT_PASS = frozenset({"BYPASS", "COMPASS", "ENCOMPASS", "OVERPASS", "SURPASS", "TRESPASS", "UNDERPASS"})
# Query parameters of a URL that carry a credential (?token=..., ?sig=... of a signed URL).
_CREDENTIAL_PARAMS = frozenset(
    {
        "token",
        "access_token",
        "id_token",
        "refresh_token",
        "sig",
        "signature",
        "code",
        "password",
        "pass",
        "pwd",
    }
)


def looks_like_credential(name: str) -> bool:
    """Whether an environment variable name looks like a credential: the word list, or a wider
    pattern (DB_PASSWD, WML_CREDENTIALS, SMTP_PASS, SSHPASS, GITHUB_PAT, BEARER, JWT,
    SLACK_WEBHOOK_URL, ORACLE_PWD, HTTP_AUTH...). Not PWD or OLDPWD (the shell's folders)."""
    upper = name.upper()
    if is_secret_name(name) or _CREDENTIAL_NAME.search(upper):
        return True
    words = [w for w in upper.split("_") if w]
    if upper in ("PWD", "OLDPWD"):
        return False
    return any(w in _CREDENTIAL_WORDS or (w.endswith("PASS") and w not in _NOT_PASS) for w in words)


def url_credentials(value: str) -> list[str]:
    """The credential parts of a URL value, as written in it and decoded: the password of its
    user part (`postgres://user:pw@host/db`) and the values of credential-named query parameters
    (`?token=`, `?sig=`, `?api_key=`...). [] for anything that is not such a URL."""
    if "://" not in value:
        return []
    try:
        url = urlsplit(value.strip())
        password = url.password
        query = parse_qsl(url.query, keep_blank_values=False)
    except ValueError:
        return []
    found: list[str] = []
    if password:
        found += [password, unquote(password)]
    for key, item in query:
        if key.lower() in _CREDENTIAL_PARAMS or looks_like_credential(key):
            found += [item, quote(item, safe="")]
    return list(dict.fromkeys(found))


def declared_credentials(environ: Mapping[str, str] | None = None) -> set[str]:
    """Names the user declares credentials in $MLOPS_KERNEL_CREDENTIALS (commas or spaces):
    masked like any, and the ones template kernels may inherit."""
    env = os.environ if environ is None else environ
    return {n for n in re.split(r"[\s,]+", env.get(DECLARED_ENV, "")) if n}


def is_credential(name: str, value: str = "", environ: Mapping[str, str] | None = None) -> bool:
    """Whether an environment variable is a credential: by its name, because its value is a URL
    carrying one (`DATABASE_URL=postgres://u:pw@h/db`), or declared in `environ`'s
    $MLOPS_KERNEL_CREDENTIALS."""
    return (
        looks_like_credential(name) or bool(url_credentials(value)) or name in declared_credentials(environ)
    )


def _upper_hex(text: str) -> str:
    return re.sub(r"\\u([0-9a-f]{4})", lambda m: "\\u" + m.group(1).upper(), text)


def _escaped(value: str) -> set[str]:
    """The forms a string takes inside JSON (ASCII or not, hex in either case), a Python repr,
    `ascii()`, a bytes repr, and HTML text (named, decimal and hex entities)."""
    json_ascii = json.dumps(value)[1:-1]
    html_forms = {html.escape(value), html.escape(value, quote=False)}
    html_forms |= {f.replace("&#x27;", "&#39;") for f in html_forms}
    html_forms |= {f.encode("ascii", "xmlcharrefreplace").decode() for f in html_forms}
    html_forms |= {re.sub(r"&#(\d+);", lambda m: f"&#x{int(m.group(1)):x};", f) for f in html_forms}
    return {
        value,
        json_ascii,
        _upper_hex(json_ascii),
        json.dumps(value, ensure_ascii=False)[1:-1],
        repr(value)[1:-1],
        ascii(value)[1:-1],
        repr(value.encode())[2:-1],
        *html_forms,
    }


def _url_encoded(value: str) -> set[str]:
    """Percent-encoded forms: a path segment, a query value (space as +), as `requests` quotes a
    URL (`requote_uri`) and JavaScript's encodeURIComponent (`!*'()` kept); lowercase hex too."""
    forms = {
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        quote(value, safe="!*'()"),
        quote(value, safe="!#$%&'()*+,/:;=?@[]~"),
        quote_plus(value, safe="*"),
    }
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), f) for f in forms}
    return forms


def _base64_forms(value: str) -> tuple[set[str], bool]:
    """The characters base64 always produces for `value`'s bytes wherever they sit in a longer
    encoded text: for each alignment (0, 1 or 2 bytes before it), the characters whose six bits
    all come from the secret; standard and URL-safe alphabets. And whether every alignment gave
    a form long enough to be used (else the secret is found by decoding)."""
    raw = value.encode()
    forms: set[str] = set()
    complete = True
    for lead in range(3):
        encoded = base64.b64encode(b"\0" * lead + raw).decode()
        start = -(-8 * lead // 6)  # the first character holding no bit of the lead bytes
        end = 8 * (lead + len(raw)) // 6  # past the last character holding only secret bits
        form = encoded[start:end]
        if len(form) >= BASE64_MIN_FORM:
            forms |= {form, form.replace("+", "-").replace("/", "_")}
        else:
            complete = False
    return forms, complete


def _normal_forms(value: str) -> set[str]:
    """The secret as typed and in both Unicode normal forms (composed, decomposed)."""
    return {value, unicodedata.normalize("NFC", value), unicodedata.normalize("NFD", value)}


def secret_forms(value: str) -> set[str]:
    """Every form of one secret that the masker looks for: plain, URL-encoded, base64
    (standard, URL-safe), each also escaped for JSON, repr and HTML, and JSON-escaped twice
    (a JSON document stored as a string in another); for each Unicode normal form."""
    if not value:
        return set()
    forms: set[str] = set()
    for text in _normal_forms(value):
        for base in {text} | _url_encoded(text) | _base64_forms(text)[0]:
            for once in _escaped(base):
                forms |= {once, json.dumps(once)[1:-1]}
    return {f for f in forms if f}


# A whole base64 word (standard or URL-safe, padded or not), for secrets found by decoding.
_B64_WORD = r"(?<![A-Za-z0-9+/_=-])[A-Za-z0-9+/_-]{6,}={0,2}(?![A-Za-z0-9+/_=-])"
_B64_MAX_WORD = 4096


def _decoded(word: bytes) -> bytes | None:
    """The bytes a base64 word encodes, or None when it is none."""
    if len(word) > _B64_MAX_WORD:
        return None
    body = word.rstrip(b"=")
    try:
        return base64.b64decode(
            body.replace(b"-", b"+").replace(b"_", b"/") + b"=" * (-len(body) % 4), validate=True
        )
    except (binascii.Error, ValueError):
        return None


class Masker:
    """Replaces every form (see `secret_forms`) of each secret by MASK, in text or bytes."""

    def __init__(self, secrets: Iterable[str], mask: str = MASK) -> None:
        forms: set[str] = set()
        short: set[bytes] = set()
        for value in secrets:
            forms |= secret_forms(value)
            if value and not _base64_forms(value)[1]:
                short |= {text.encode() for text in _normal_forms(value)}
        # Longest first: a secret containing another is masked whole.
        self.forms = sorted(forms, key=lambda f: (-len(f), f))
        self.mask_text = mask
        self._short = short
        self._text = re.compile("|".join(map(re.escape, self.forms))) if self.forms else None
        self._bytes = re.compile(b"|".join(re.escape(f.encode()) for f in self.forms)) if self.forms else None
        # How far a masked form can reach: text must be masked this far past a cut to be whole.
        self.reach = max([len(f.encode()) for f in self.forms] + [_B64_MAX_WORD if short else 0])
        self._b64_text = re.compile(_B64_WORD)
        self._b64_bytes = re.compile(_B64_WORD.encode())

    def __bool__(self) -> bool:
        return bool(self.forms)

    def _encodes_short(self, word: bytes) -> bool:
        """Whether a base64 word is exactly a short secret, or `user:secret`."""
        raw = _decoded(word)
        return raw is not None and (raw in self._short or raw.partition(b":")[2] in self._short)

    def _short_words(self, data: AnyStr, pattern: re.Pattern[AnyStr], mask: AnyStr) -> AnyStr:
        if not self._short:
            return data

        def replace(m: re.Match[AnyStr]) -> AnyStr:
            word = m.group(0)
            raw = word.encode() if isinstance(word, str) else word
            return mask if self._encodes_short(raw) else word

        return pattern.sub(replace, data)

    def mask(self, text: str) -> str:
        """`text` with every form of every secret replaced by the mask."""
        text = self._text.sub(self.mask_text, text) if self._text is not None else text
        return self._short_words(text, self._b64_text, self.mask_text)

    def mask_bytes(self, data: bytes) -> bytes:
        """`data` (a log, a file) with every form's UTF-8 bytes replaced by the mask."""
        data = self._bytes.sub(self.mask_text.encode(), data) if self._bytes is not None else data
        return self._short_words(data, self._b64_bytes, self.mask_text.encode())

    def leaks(self, data: str | bytes) -> bool:
        """Whether any form of any secret is in `data`."""
        if isinstance(data, str):
            data = data.encode(errors="surrogatepass")
        if self._bytes is not None and self._bytes.search(data) is not None:
            return True
        return bool(self._short) and any(
            self._encodes_short(m.group(0)) for m in self._b64_bytes.finditer(data)
        )
