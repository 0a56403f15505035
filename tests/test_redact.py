"""Redaction: any run of 8+ characters of a secret the process holds is masked."""

from __future__ import annotations

import logging

from hypothesis import given
from hypothesis import strategies as st

from sso_monitor.models import SecretValue
from sso_monitor.redact import MIN_RUN, Redactor

SECRET = "Ab3" + "8Q~" + "kLmNoPqRsTuVwXyZ0123456789-_.~abcdefg"[:34]


def test_whole_secret_and_long_fragments_are_masked():
    r = Redactor()
    r.register(SECRET)
    assert r.scrub(f"it was {SECRET}!") == "it was ***!"
    assert SECRET[:39] not in r.scrub(f"echo: {SECRET[:39]}")
    assert r.scrub(f"x{SECRET[5:13]}y") == "x***y"  # exactly 8 characters
    assert r.scrub(f"x{SECRET[5:12]}y") == f"x{SECRET[5:12]}y"  # 7 are not a fragment
    assert r.scrub("nothing here") == "nothing here"


def test_short_secrets_are_not_registered_so_ordinary_words_survive():
    r = Redactor()
    r.register("relay1")
    assert r.scrub("the relay1 here") == "the relay1 here" and not r


@given(st.text(min_size=0, max_size=60), st.integers(0, 40 - MIN_RUN), st.integers(MIN_RUN, 40), st.text(max_size=60))
def test_no_run_of_eight_survives(prefix, start, length, suffix):
    r = Redactor()
    r.register(SECRET)
    fragment = SECRET[start : start + length]
    if len(fragment) < MIN_RUN:
        return
    cleaned = r.scrub(prefix + fragment + suffix)
    for at in range(len(SECRET) - MIN_RUN + 1):
        assert SECRET[at : at + MIN_RUN] not in cleaned


def test_every_log_record_of_the_process_is_scrubbed(caplog):
    held = SecretValue("Zq9" + "8Q~" + "thirty-four-characters-of-a-secret")
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("some.sdk").debug("body: %s", "prefix " + held.reveal()[2:30] + " suffix")
        try:
            raise ValueError(held.reveal()[1:])
        except ValueError:
            logging.getLogger("some.sdk").exception("failed")
    text = caplog.text
    assert held.reveal()[2:30] not in text and held.reveal()[1:] not in text
    assert "***" in text


def test_a_secret_url_is_masked_by_its_signature_not_its_host():
    r = Redactor()
    r.register("https://prod-01.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sig=Zx9ab8Cd7Ef6Gh5Ij4Kl3Mn2")
    assert r.scrub("see https://prod-01.westus.logic.azure.com/workflows") == "see https://prod-01.westus.logic.azure.com/workflows"
    assert "Zx9ab8Cd7Ef6" not in r.scrub("sig=Zx9ab8Cd7Ef6Gh5Ij4")


def test_a_storage_connection_string_is_masked_by_its_key_not_its_endpoints():
    key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    r = Redactor()
    r.register(f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={key};BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;")
    line = "Request URL: 'http://127.0.0.1:10000/devstoreaccount1/sso-monitor-leases'"
    assert r.scrub(line) == line  # the endpoint is in every storage log line: not a secret
    assert key[:20] not in r.scrub(f"AccountKey={key}") and "***" in r.scrub(f"key {key[5:30]}")
    sas = Redactor()
    sas.register("BlobEndpoint=https://acct.blob.core.windows.net/;SharedAccessSignature=sv=2022-11-02&ss=b&sig=AbCdEf0123456789xyz")
    assert "0123456789" not in sas.scrub("sig=AbCdEf0123456789xyz") and sas.scrub("acct.blob.core.windows.net") == "acct.blob.core.windows.net"
