"""The encoding-aware masker: every form a secret takes in text is found and masked."""

from __future__ import annotations

import base64
import html
import json
import re
import unicodedata
from urllib.parse import quote, quote_plus, urlencode

import pytest
import requests

from mlops_widgets.masking import MASK, Masker, is_credential, looks_like_credential, url_credentials

SECRET = "Sk/9+q=a&b \"c\\d'!*()"  # characters each encoding rewrites
NON_ASCII = "Mäuse'Grün"  # composed letters and a quote


def _encodings(value: str) -> dict[str, str]:
    raw = value.encode()
    return {
        "plain": f"token={value}",
        "url path": f"https://h/api/{quote(value, safe='')}/x",
        "url query": "https://h/api?" + urlencode({"apikey": value, "n": 1}),
        "url plus": f"k={quote_plus(value)}",
        "url lowercase hex": re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(value, safe="")),
        "json": json.dumps({"k": value}),
        "json twice": json.dumps(json.dumps({"k": value})),
        "json of a url": json.dumps({"url": f"https://h/?k={quote(value)}"}),
        "repr": repr({"k": value}),
        "html": f"<td>{html.escape(value)}</td>",
        "base64": base64.b64encode(raw).decode(),
        "base64 url-safe": base64.urlsafe_b64encode(raw).decode(),
        **{
            f"base64 after {n} bytes": base64.b64encode(b"u" * n + b":" + raw + b"!").decode()
            for n in range(3)
        },
        **{
            f"base64 url-safe after {n} bytes": base64.urlsafe_b64encode(b"u" * n + raw).decode().rstrip("=")
            for n in range(3)
        },
        "basic auth header": "Authorization: Basic " + base64.b64encode(b"apikey:" + raw).decode(),
        # as `requests` puts a secret into a URL it is given, and as JavaScript encodes it
        "requests url": requests.Request("GET", f"https://h/{value}/x").prepare().url or "",
        "requests params": requests.Request("GET", "https://h/", params={"k": value}).prepare().url or "",
        "encodeURIComponent": quote(value, safe="!*'()~"),
    }


def _non_ascii_forms(value: str) -> dict[str, str]:
    return {
        "bytes repr": repr(value.encode()),
        "ascii()": ascii(value),
        "html &#39;": html.escape(value).replace("&#x27;", "&#39;"),
        "html numeric": html.escape(value).encode("ascii", "xmlcharrefreplace").decode(),
        "json upper hex": re.sub(
            r"\\u([0-9a-f]{4})", lambda m: "\\u" + m.group(1).upper(), json.dumps(value)
        ),
        "nfd": unicodedata.normalize("NFD", value),
        "nfc": unicodedata.normalize("NFC", unicodedata.normalize("NFD", value)),
        "url": quote(value),
    }


@pytest.mark.parametrize("form", list(_encodings(SECRET)))
def test_every_encoding_of_a_secret_is_masked(form: str) -> None:
    text = _encodings(SECRET)[form]
    masker = Masker([SECRET])
    assert masker.leaks(text) and masker.leaks(text.encode())
    masked = masker.mask(text)
    assert MASK in masked and not masker.leaks(masked)
    assert masker.mask_bytes(text.encode()) == masked.encode()


@pytest.mark.parametrize("form", list(_non_ascii_forms(NON_ASCII)))
def test_every_form_of_a_non_ascii_secret_is_masked(form: str) -> None:
    text = _non_ascii_forms(NON_ASCII)[form]
    masker = Masker([NON_ASCII])
    assert masker.leaks(text) and masker.leaks(text.encode())
    assert not masker.leaks(masker.mask(text)) and MASK in masker.mask(text)
    assert masker.mask_bytes(text.encode()) == masker.mask(text).encode()


@pytest.mark.parametrize("secret", ["k3y!", "ab12c", "s3cr3t"])
@pytest.mark.parametrize("user", ["", "u:", "me:", "user:", "apikey:"])
def test_base64_of_a_short_secret_and_of_basic_auth_is_masked(secret: str, user: str) -> None:
    masker = Masker([secret])
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        word = encode((user + secret).encode()).decode()
        for text in (f"Authorization: Basic {word}", f'{{"t": "{word.rstrip("=")}"}}'):
            assert (
                masker.leaks(text) and MASK in masker.mask(text) and word.rstrip("=") not in masker.mask(text)
            )
            assert masker.mask_bytes(text.encode()) == masker.mask(text).encode()


def test_a_short_secret_is_masked_in_base64_only_when_exactly_encoded() -> None:
    masker = Masker(["k3y!"])
    near = [base64.b64encode(b).decode() for b in (b"k3y!x", b"xk3y!", b"k3y", b"k3y!:u", b"user:k3y")]
    text = " ".join(["YWJjZGVm", "function", "k3y", *near])  # words, and other bytes around it
    assert masker.mask(text) == text and not masker.leaks(text)


def test_masking_keeps_the_rest_and_the_longest_secret_whole() -> None:
    masker = Masker(["abcd1234", "abcd1234-and-more", ""])
    assert masker.mask("x abcd1234-and-more y abcd1234 z") == f"x {MASK} y {MASK} z"
    assert masker.mask("nothing here") == "nothing here"
    assert not Masker([]) and Masker([]).mask("abc") == "abc" and not Masker([]).leaks(b"abc")


def test_a_short_secret_has_no_base64_form_that_would_match_by_chance() -> None:
    masker = Masker(["k3y!"])  # its base64 forms would be 4-5 characters long
    assert masker.forms and all(len(f) <= 12 for f in masker.forms)
    assert masker.mask("a k3y! b") == f"a {MASK} b"


@pytest.mark.parametrize(
    "name",
    [
        "DB_PASSWD",
        "WML_CREDENTIALS",
        "SMTP_PASS",
        "ORACLE_PWD",
        "HTTP_AUTH",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "MY_APIKEY",
        "github_token",
        "PASS",
        "SSHPASS",
        "GITHUB_PAT",
        "BEARER",
        "BEARER_TOKEN",
        "JWT",
        "APP_JWT_SIGNING",
        "SLACK_WEBHOOK_URL",
        "MYSQL_PASS",
        "DB_PASS_FILE",
        "SSH_AUTH_SOCK",
        "AZURE_STORAGE_CONNECTION_STRING",
        "SENTRY_DSN",
    ],
)
def test_credential_looking_names(name: str) -> None:
    assert looks_like_credential(name)


@pytest.mark.parametrize(
    "name",
    ["PWD", "OLDPWD", "PATH", "HOME", "PASSAGE_DIR", "COMPASS_HOME", "MLOPS_HOME", "NO_PROXY", "PATCH_LEVEL"],
)
def test_ordinary_names_are_not_credentials(name: str) -> None:
    assert not looks_like_credential(name)


@pytest.mark.parametrize(
    ("value", "parts"),
    [
        ("postgres://app:pw%40rd@db.internal:5432/prod", ["pw%40rd", "pw@rd"]),
        ("https://user:hunter22@example.com/", ["hunter22"]),
        ("https://blob.example/c/f?sv=2020&sig=abc%2Fdef&se=1", ["abc/def", "abc%2Fdef"]),
        ("https://api.example/?access_token=tok123&page=2", ["tok123"]),
    ],
)
def test_a_url_values_credential_part(value: str, parts: list[str]) -> None:
    assert sorted(url_credentials(value)) == sorted(parts)
    assert is_credential("DATABASE_URL", value) and is_credential("ANY_NAME", value)


@pytest.mark.parametrize(
    "value", ["https://example.com/a?page=2", "postgres://app@db/prod", "not a url", "/usr/bin"]
)
def test_urls_without_credentials_are_no_credentials(value: str) -> None:
    assert url_credentials(value) == [] and not is_credential("SERVICE_URL", value)
