"""The encoding-aware masker: every form a secret takes in text is found and masked."""

from __future__ import annotations

import base64
import html
import json
import re
from urllib.parse import quote, quote_plus, urlencode

import pytest

from mlops_widgets.masking import MASK, Masker, looks_like_credential

SECRET = 'Sk/9+q=a&b "c\\d'  # characters each encoding rewrites


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
    }


@pytest.mark.parametrize("form", list(_encodings(SECRET)))
def test_every_encoding_of_a_secret_is_masked(form: str) -> None:
    text = _encodings(SECRET)[form]
    masker = Masker([SECRET])
    assert masker.leaks(text) and masker.leaks(text.encode())
    masked = masker.mask(text)
    assert MASK in masked and not masker.leaks(masked)
    assert masker.mask_bytes(text.encode()) == masked.encode()


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
    ],
)
def test_credential_looking_names(name: str) -> None:
    assert looks_like_credential(name)


@pytest.mark.parametrize(
    "name", ["PWD", "OLDPWD", "PATH", "HOME", "PASSAGE_DIR", "COMPASS_HOME", "MLOPS_HOME"]
)
def test_ordinary_names_are_not_credentials(name: str) -> None:
    assert not looks_like_credential(name)
