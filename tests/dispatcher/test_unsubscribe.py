from collections.abc import Callable

import pytest

from signalbox.dispatcher.unsubscribe import BadToken, make_token, read_token, unsubscribe_url

SECRET = b"s3cret"


def test_a_token_names_customer_and_channel() -> None:
    token = make_token(SECRET, "cus_42", "email")
    assert read_token(SECRET, token) == ("cus_42", "email")


@pytest.mark.parametrize("mutate", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
    lambda t: make_token(b"other", "cus_42", "email"),
    lambda t: make_token(SECRET, "cus_43", "email").split(".")[0] + "." + t.split(".")[1],
    lambda t: "no-dot",
    lambda t: "%%%.%%%",
])
def test_forged_or_altered_tokens_are_refused(mutate: Callable[[str], str]) -> None:
    with pytest.raises(BadToken):
        read_token(SECRET, mutate(make_token(SECRET, "cus_42", "email")))


def test_url_is_under_the_base() -> None:
    url = unsubscribe_url("https://sb.example.com/", SECRET, "cus_1", "sms")
    assert url.startswith("https://sb.example.com/v1/unsubscribe/")
    assert read_token(SECRET, url.rsplit("/", 1)[1]) == ("cus_1", "sms")
