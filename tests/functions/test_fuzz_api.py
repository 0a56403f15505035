"""Generated input against every route of the admin API's OpenAPI document.

For each path+method in ``openapi_document()`` one hypothesis test (one sandbox for
all its examples) calls the function directly with generated input:

- the path parameter: arbitrary text (unicode, slashes, whitespace, empty, very
  long: up to 10,000 characters and beyond), strings matching the document's
  pattern, the configured facility and near misses of it, or no parameter at all;
- the body: arbitrary bytes, arbitrary JSON values, objects built from the
  operation's requestBody schema with wrong types and extra fields, bodies over
  the size limit, pathological JSON (deep nesting, also inside a known field,
  huge numbers, UTF-16), and text that is not UTF-8 (Latin-1, UTF-16 without a
  BOM, stray bytes);
- the values that used to give a 5xx, among the generated ones: snooze ``until``
  at the ends of time with extreme offsets ("9999-12-31T23:59:59-14:00",
  "0001-01-01T00:00:00+14:00"), huge and unicode ``reason`` (lone surrogates,
  control characters, right-to-left, emoji), keyId strings of every length up
  to the body limit;
- Authorization: absent, garbage, broken tokens (tampered, unknown key, wrong
  audience, expired, no role, alg none), or a valid token with the Read or Admin role.

Every answer must be below 500, an ``{"error": {"code", "message"}}`` JSON
object when it is 4xx, JSON (HTML for the status page) when it is 200, one of the
statuses the document lists for the operation, and must hold no secret the
sandbox ever issued, in its body or its headers. The sandbox is not faulted, so
502 never has an excuse here; the admin API is configured, so 503 neither.

Beyond that, a few answers are fixed whatever the rest of the input: no valid
token is a 401 (403 for a token without the role), Read on an action is a 403,
a facility outside the document's pattern is invalid_facility, an oversized body
body_too_large, a keyId that is not exactly a GUID invalid_field.

The status routes serve the report a real timer run stored (fixture ``status_stored``).
The rate limit is lifted here (tests/functions/test_status_api.py tests it).

Rotations: a valid Admin token, the configured facility and a well-typed body
really rotate (``force``) or check whether a rotation is due. They are let
through, not filtered: with ``verify`` at one success and no interval a real
rotation takes well under a second, and the later ones meet the first one's
pending confirmation, which is a state worth fuzzing too. For confirm, the
fixture ``handed_over`` starts one rotation first and the keyIds the vault holds
are among the generated ones, so a confirmation can really finish.

Which answers the examples reached: ``pytest tests/functions/test_fuzz_api.py
--hypothesis-show-statistics`` (each example records its status and error code
or rotation stage as an event).
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sso_monitor.functions import admin
from sso_monitor.functions.openapi import openapi_document
from tests.app_functions import app_functions
from tests.functions import configure_admin_api, forget_status_report, run_timer

pytestmark = pytest.mark.usefixtures("no_secret_in_logs")

DOCUMENT = openapi_document()
FACILITY_PATTERN = DOCUMENT["paths"]["/apps/{facility}/check"]["post"]["parameters"][0]["schema"]["pattern"]
FACILITY = "acme"  # the one app the fixture configures
MAX_BODY = admin.MAX_BODY

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _functions_by_route() -> dict[tuple[str, str], Any]:
    """(OpenAPI path, method) -> the user function, from the registered HTTP triggers."""
    table = {}
    for function in app_functions():
        trigger = function.get_trigger()
        for method in getattr(trigger, "methods", None) or []:
            table[("/" + trigger.route, str(getattr(method, "value", method)).lower())] = function.get_user_function()
    return table


# Statuses the handlers answer that openapi.py does not list yet. check reads its
# (empty) body with the same limit as rotate, so an oversized body is a 413 there
# too. Remove an entry once the document lists it.
UNDOCUMENTED: dict[str, set[str]] = {}

FUNCTIONS = _functions_by_route()
OPERATIONS = [(path, method) for path, item in DOCUMENT["paths"].items() for method in item if method in ("get", "post", "put", "patch", "delete")]


def test_every_documented_operation_has_a_function():
    assert OPERATIONS and all(operation in FUNCTIONS for operation in OPERATIONS)


# ---- the sandbox and the callers


@pytest.fixture
def fuzz_api(sandbox, ids, monkeypatch, tmp_path, azurite):
    """The admin API configured against the sandbox and Azurite (the Function App's storage:
    leases, snoozes, the stored status report); one sandbox per test, shared by its examples.
    The rate limit is lifted: it would turn the later examples into 429s before their input
    is read (tests/functions/test_status_api.py tests it)."""
    from sso_monitor.functions import ratelimit

    monkeypatch.setattr(ratelimit, "LIMITS", {kind: ratelimit.Limit(1_000_000, 60.0) for kind in ratelimit.LIMITS})
    configure_admin_api(
        sandbox,
        ids,
        monkeypatch,
        tmp_path,
        facility=FACILITY,
        verify={"successes": 1, "intervalSeconds": 0, "deadlineSeconds": 5},
        storage=azurite.connection_string,
    )
    monkeypatch.setenv("SSO_MONITOR_SCHEDULE", "0 0 6 * * *")
    yield sandbox
    admin.reset()


class Tokens(dict):
    """The minted tokens by kind; a short repr, so a failing example stays readable."""

    def __repr__(self) -> str:
        return f"Tokens({', '.join(self)})"


@pytest.fixture
def tokens(fuzz_api, ids) -> Tokens:
    """Minted once per test: the valid callers and a few broken tokens."""

    def mint(*roles: str, **kwargs: Any) -> str:
        options = {
            "tenant_id": ids.tenant_id,
            "audience": ids.admin_api_uri,
            "subject": "user-fuzz",
            "roles": list(roles),
            "extra": {"preferred_username": "fuzz@contoso.example"},
        }
        return fuzz_api.mint_token(**{**options, **kwargs})

    past = datetime.now(UTC) - timedelta(hours=3)
    return Tokens(
        {
            "read": mint("SsoMonitor.Read"),
            "admin": mint("SsoMonitor.Admin"),
            "no-role": mint(),
            "other-role": mint("SsoMonitor.Everything"),
            "tampered": mint("SsoMonitor.Admin", key="tampered"),
            "untrusted": mint("SsoMonitor.Admin", key="untrusted"),
            "wrong-audience": mint("SsoMonitor.Admin", audience="api://someone-else"),
            "expired": mint("SsoMonitor.Admin", now=past),
            "alg-none": mint("SsoMonitor.Admin", algorithm="none"),
        }
    )


@pytest.fixture
def handed_over(fuzz_api, tokens, path) -> None:
    """For confirm: one real rotation waiting for its confirmation, with SmartTrace
    already holding the new secret (as the administrator would have arranged), so a
    generated keyId can meet it and the confirmation run to its end."""
    if path != "/apps/{facility}/confirm":
        return
    rotate = ("/apps/{facility}/rotate", "post")
    response = call(FUNCTIONS[rotate], *reversed(rotate), {"facility": FACILITY}, b'{"force": true}', f"Bearer {tokens['admin']}")
    result = json.loads(response.get_body())
    assert result["stage"] == "awaiting-confirmation", result
    world = fuzz_api.world
    for vault in world.vaults.values():
        for secret in vault.secrets.values():
            for version in secret.versions:
                if version.tags.get("keyId") == result["keyId"]:
                    world.facility(FACILITY).client_secret = version.value


@pytest.fixture
def status_stored(fuzz_api, azurite, path) -> None:
    """For the status routes: the report of a real timer run, so the answers hold real data."""
    if path not in ("/status", "/status/page"):
        return
    forget_status_report(azurite.connection_string)
    run_timer()


# ---- strategies

_TEXT = st.text(max_size=80)
_JSON_LEAVES = st.none() | st.booleans() | st.integers() | st.floats() | _TEXT
JSON_VALUES = st.recursive(_JSON_LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4), max_leaves=12)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Pick a branch by weight, then draw from it. ``one_of`` favours its first
    branches much more; this only somewhat (hypothesis likes small integers)."""
    branches = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(branches) - 1).flatmap(lambda index: branches[index])


def authorizations(tokens: dict[str, str], *, takes_input: bool = True) -> st.SearchStrategy[tuple[str, str | None]]:
    """(kind, Authorization header or None). For an operation that takes input, valid
    tokens are drawn about half the time, mostly Admin, so the parsing behind
    authentication gets its share; for one that takes none (the status), a valid
    token only means one more full (slow) status, so it is drawn less."""
    valid = 1 if takes_input else 0
    broken = sorted(set(tokens) - {"read", "admin"})
    garbage_tokens = st.one_of(_TEXT, st.sampled_from(["", " ", "a.b.c", "x" * 20_000, "e30.e30.", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"]))
    return weighted(  # the first branch is drawn more than its weight says: keep a cheap one there
        (1, st.just(("absent", None))),
        (1 + 4 * valid, st.just(("admin", f"Bearer {tokens['admin']}"))),
        (valid, st.just(("admin", f"bearer   {tokens['admin']}  "))),  # the scheme is case-insensitive; spaces around the token
        (1 + valid, st.just(("read", f"Bearer {tokens['read']}"))),
        (2, st.sampled_from(broken).map(lambda kind: (kind, "Bearer " + tokens[kind]))),
        (1, _TEXT.map(lambda text: ("garbage", text))),
        (1, garbage_tokens.map(lambda text: ("garbage", "Bearer " + text))),
        (1, st.sampled_from(["Bearer", "Basic dXNlcjpwYXNz", "Bearer  ", "Bearer a b"]).map(lambda header: ("garbage", header))),
    )


def path_values(parameter: dict[str, Any]) -> st.SearchStrategy[str]:
    pattern = parameter.get("schema", {}).get("pattern")
    near = [
        FACILITY,
        FACILITY,
        " acme",
        "acme\n",
        "ACME",
        "acme/check",
        "../acme",
        "acme%2Fcheck",
        "nowhere",
        "a" * 63,
        "a" * 64,
        "-acme",
        "",
        "\x00",
        "acme\x00",
    ]
    return weighted(
        (6, st.just(FACILITY)),
        (2, st.sampled_from(near)),
        (1, st.text()),
        (1, st.text(min_size=200, max_size=2000)),
        (1, st.sampled_from(["a" * 10_000, "acme" + "-" * 9_996, "\u00e9" * 10_000, "a/" * 5_000])),
        (1, st.integers(5_000, 40_000).map(lambda n: ("acme-" * n)[:n])),
        (1, st.text(alphabet="abc/-. \n%", max_size=30)),
        (1, st.from_regex(pattern, fullmatch=True) if pattern else st.text()),
    )


# Snooze values: the ends of time with the extreme offsets, dates near now (some valid),
# and every offset Python accepts.
EXTREME_UNTIL = [
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59+14:00",
    "0001-01-01T00:00:00-14:00",
    "9999-12-31T23:59:59.999999-23:59",
    "0001-01-01T00:00:00+23:59",
    "9999-12-31",
    "0001-01-01",
    "9999-12-31T23:59:59Z",
    "2026-02-30",
    "2026-13-01",
    "+2026-01-01",
    "2026-01-01T24:00:00",
    "2026-01-01T00:00:00+24:00",
    "Z",
    "T",
    "-",
    " 2026-01-01 ",
]


def until_values() -> st.SearchStrategy[str]:
    from datetime import timezone as tz

    today = datetime.now(UTC).date()
    offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda minutes: tz(timedelta(minutes=minutes)))
    return weighted(
        (3, st.sampled_from(EXTREME_UNTIL)),
        (2, st.integers(-5, 120).map(lambda days: (today + timedelta(days=days)).isoformat())),
        (2, st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets).map(lambda moment: moment.isoformat())),
        (1, st.text(max_size=60)),
    )


def reasons() -> st.SearchStrategy[str]:
    """Huge and unicode: lone surrogates (only JSON's escapes can carry them), control
    characters, right-to-left marks, emoji, combining marks; around the 200-character limit."""
    odd = ["\ud800", "x\udfff", "\udfff\ud800", "\x00", "\u202e\u2066rtl", "\U0001f512" * 3, "e\u0301" * 5, "\ufeff", "\r\n\t", "\u2028\u2029"]
    return weighted(
        (2, st.text(max_size=220)),
        (2, st.sampled_from(odd)),
        (1, st.lists(st.sampled_from(odd), min_size=1, max_size=40).map("".join)),
        (1, st.integers(195, 205).map(lambda n: "\u00e9" * n)),
        (1, st.integers(201, 15_000).map(lambda n: ("\U0001f512a" * n)[:n])),
        (1, st.text(alphabet=st.characters(codec="utf-8"), min_size=190, max_size=210)),
    )


def codes() -> st.SearchStrategy[str]:
    return weighted(
        (3, st.sampled_from(["LOGOUT_URL_MISMATCH", "SECRET_EXPIRING", "ORPHAN_CREDENTIAL"])), (1, st.from_regex(r"[A-Z][A-Z_]{1,40}", fullmatch=True))
    )


def key_id_lengths() -> st.SearchStrategy[str]:
    """keyId strings of every length, from empty to the size of the body limit."""
    guid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    return weighted(
        (2, st.integers(0, 80).map(lambda n: (guid * 3)[:n])),
        (1, st.integers(0, MAX_BODY).map(lambda n: "0" * n)),
        (1, st.integers(0, 2 * MAX_BODY).map(lambda n: (guid + "-") * (n // 37) + guid[: n % 37])),
        (1, st.text(alphabet="0123456789abcdefABCDEF-{} \n", max_size=60)),
    )


def key_ids_held(world: Any) -> st.SearchStrategy[str]:
    """A keyId the sandbox's vaults hold at the time of the draw (rotations add some)."""

    def held() -> list[str]:
        return sorted({v.tags["keyId"] for vault in world.vaults.values() for secret in vault.secrets.values() for v in secret.versions if v.tags.get("keyId")})

    return st.integers(0, 99).map(lambda index: (ids := held())[index % len(ids)])


def _valid_for(schema: dict[str, Any], known: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[Any]:
    if known is not None:
        return weighted((1, known), (1, _valid_for(schema)))
    kind = schema.get("type")
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if kind == "boolean":
        return st.booleans()
    if kind == "string" and schema.get("format") == "uuid":
        guids = st.uuids().map(str)
        return st.one_of(
            guids,
            guids.map(str.upper),
            guids.map(lambda g: g + "\n"),
            guids.map(lambda g: "{" + g + "}"),
            guids.map(lambda g: " " + g),
            guids.map(lambda g: g.replace("-", "")),
        )
    if kind == "string":
        return st.text()
    if kind == "integer":
        return st.integers()
    return JSON_VALUES


def _strict_for(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    if schema.get("type") == "string" and schema.get("format") == "uuid":
        return st.uuids().map(str)
    return _valid_for(schema)


def schema_objects(
    schema: dict[str, Any], known: dict[str, st.SearchStrategy[Any]] | None = None, *, strict: bool = False
) -> st.SearchStrategy[dict[str, Any]]:
    """Objects shaped by a requestBody schema, loosened: each property well-typed or
    any JSON value, required ones sometimes left out, extra fields sometimes added.
    ``known`` values (e.g. the keyIds the sandbox holds) are drawn for half the
    well-typed ones, so the answers behind the format checks are reached too.
    ``strict``: only valid objects (known values, or the schema's type and format)."""
    known = known or {}
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))

    @st.composite
    def build(draw: Any) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for name, sub in properties.items():
            present = (strict or draw(st.integers(0, 9)) > 0) if name in required else draw(st.booleans())
            if present and strict:
                obj[name] = draw(known[name] if name in known else _strict_for(sub))
            elif present:
                obj[name] = draw(weighted((4, _valid_for(sub, known.get(name))), (1, JSON_VALUES)))
        if not strict and draw(st.integers(0, 5)) == 0:
            obj.update(draw(st.dictionaries(_TEXT, JSON_VALUES, min_size=1, max_size=3)))
        return obj

    return build()


def _encoded(value: Any, encoding: str = "utf-8", ensure_ascii: bool = True) -> bytes:
    return json.dumps(value, ensure_ascii=ensure_ascii).encode(encoding)


PATHOLOGICAL = st.one_of(
    st.integers(500, 6000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(500, 3000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    st.integers(500, 3000).map(lambda n: b'{"dryRun":' + b"[" * n + b"]" * n + b"}"),
    st.integers(4301, 12000).map(lambda n: b"9" * n),
    st.integers(4301, 12000).map(lambda n: b'{"keyId": ' + b"1" * n + b"}"),
    st.integers(MAX_BODY + 1, 4 * MAX_BODY).map(lambda n: b" " * n),
    st.integers(MAX_BODY, 2 * MAX_BODY).map(lambda n: b'{"keyId": "' + b"0" * n + b'"}'),
    st.integers(500, 3000).map(lambda n: b'{"reason":' + b"[" * n + b"]" * n + b', "code": "SECRET_EXPIRING", "until": "2026-01-01"}'),
    st.integers(500, 3000).map(lambda n: b'{"until":' + b'{"a":' * n + b"1" + b"}" * n + b"}"),
    st.integers(500, 3000).map(lambda n: b'{"keyId":' + b"[" * n + b"]" * n + b"}"),
    st.sampled_from([b"\xef\xbb\xbf{}", b"NaN", b'{"dryRun": NaN}', b'{"dryRun": true, "dryRun": 1}', b"\x00", b"{", b'"', b"\xff\xfe", b"  \n\t "]),
)

# Not UTF-8: what a client with the wrong charset, or none, might send.
NOT_UTF8 = st.one_of(
    st.sampled_from(
        [
            '{"code": "SECRET_EXPIRING", "until": "2026-01-01", "reason": "caf\u00e9 \u00fcber"}'.encode("latin-1"),
            '{"keyId": "\u00e9"}'.encode("cp1252"),
            '{"dryRun": true}'.encode("utf-16-le"),
            '{"dryRun": true}'.encode("utf-16-be"),
            '{"force": true}'.encode("utf-32-le"),
            b'{"reason": "\xc3\x28"}',  # an invalid two-byte sequence
            b'{"reason": "\xed\xa0\x80"}',  # a surrogate encoded in UTF-8 (CESU)
            b'{"reason": "\xf8\x88\x80\x80\x80"}',  # a five-byte form
            b"\x80{}",
            b"{\x00}",
        ]
    ),
    st.binary(min_size=1, max_size=200).map(lambda raw: b'{"reason": "' + raw + b'"}'),
    st.text(min_size=1, max_size=40).map(lambda text: json.dumps({"reason": text}, ensure_ascii=False).encode("utf-16")),
)


def request_bodies(
    operation: dict[str, Any], known: dict[str, st.SearchStrategy[Any]] | None = None, *, strict: bool = False
) -> st.SearchStrategy[dict[str, Any]]:
    """Objects from the operation's requestBody schema (none: the empty object)."""
    content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    schema = content.get("schema") or {"type": "object", "additionalProperties": False, "properties": {}}
    return schema_objects(schema, known, strict=strict)


def bodies(operation: dict[str, Any], known: dict[str, st.SearchStrategy[Any]] | None = None) -> st.SearchStrategy[bytes]:
    shaped = request_bodies(operation, known)
    return weighted(
        (4, shaped.map(_encoded)),
        (1, st.just(b"")),
        (1, st.binary(max_size=200)),
        (2, JSON_VALUES.map(_encoded)),
        (1, st.tuples(shaped, st.sampled_from(["utf-16", "utf-32", "utf-8"])).map(lambda pair: _encoded(pair[0], pair[1], ensure_ascii=False))),
        (2, PATHOLOGICAL),
        (1, NOT_UTF8),
    )


# ---- the call and the answer


def call(function: Any, method: str, path: str, params: dict[str, str], body: bytes, authorization: str | None) -> func.HttpResponse:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    url = "/api" + path.format(**{name: params.get(name, "") for name in ("facility",)})
    request = func.HttpRequest(method=method.upper(), url=url, headers=headers, body=body, route_params=params)
    result = function(request)
    return asyncio.run(result) if asyncio.iscoroutine(result) else result


def check_answer(response: func.HttpResponse, operation: dict[str, Any], secrets: list[str], *, path: str) -> None:
    status = response.status_code
    raw = response.get_body()
    assert status < 500, f"{path}: {status} {raw[:500]!r}"
    documented = set(operation["responses"]) | UNDOCUMENTED.get(path, set())
    assert str(status) in documented, f"{path}: {status} is not in the document's responses {sorted(operation['responses'])}: {raw[:300]!r}"
    if status >= 400:
        assert response.mimetype == "application/json"
        document = json.loads(raw)
        error = document.get("error")
        assert isinstance(error, dict) and isinstance(error.get("code"), str) and error["code"], raw[:300]
        assert isinstance(error.get("message"), str) and error["message"], raw[:300]
    elif response.mimetype == "text/html":
        assert raw.decode("utf-8").lstrip().lower().startswith("<!doctype html")
    else:
        assert response.mimetype == "application/json", response.mimetype
        json.loads(raw)
    text = raw.decode("utf-8", "replace") + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    leaked = [secret for secret in secrets if secret and secret in text]
    assert not leaked, f"{path}: the answer holds a secret the sandbox issued"


def _secured(operation: dict[str, Any]) -> bool:
    schemes = operation.get("security", DOCUMENT.get("security", []))
    return any("entra" in requirement for requirement in schemes)


GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def operation_path_params(operation: dict[str, Any]) -> set[str]:
    return {p["name"] for p in operation.get("parameters", []) if p.get("in") == "path"}


def _outcome(response: func.HttpResponse) -> str:
    """For --hypothesis-show-statistics: the status and the error code or the rotation stage."""
    if response.status_code >= 400:
        return f"{response.status_code} {_code(response)}"
    document = json.loads(response.get_body()) if response.mimetype == "application/json" else None
    stage = document.get("stage") if isinstance(document, dict) else None
    return f"{response.status_code} {stage or 'ok'}"


def _code(response: func.HttpResponse) -> str:
    return json.loads(response.get_body())["error"]["code"]


@pytest.mark.timeout(90)
@pytest.mark.parametrize("path, method", OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
@FUZZ
@given(data=st.data())
def test_generated_input_never_gets_a_5xx_or_a_secret(fuzz_api, tokens, handed_over, status_stored, path, method, data):
    operation = DOCUMENT["paths"][path][method]
    function = FUNCTIONS[(path, method)]
    takes_input = bool(operation.get("parameters") or operation.get("requestBody"))
    known = {"keyId": weighted((2, key_ids_held(fuzz_api.world)), (1, key_id_lengths())), "until": until_values(), "reason": reasons(), "code": codes()}
    params: dict[str, str] = {}
    if takes_input and data.draw(st.integers(0, 3), label="well-formed") == 0:
        # About one example in four is a valid request (the Admin role, the configured
        # facility, a body the schema allows), so the answers behind all the checks,
        # real rotations and confirmations among them, are fuzzed for secrets too.
        params = dict.fromkeys(operation_path_params(operation), FACILITY)
        body = data.draw(request_bodies(operation, known, strict=True).map(_encoded), label="body")
        kind, authorization = "admin", f"Bearer {tokens['admin']}"
    else:
        for parameter in operation.get("parameters", []):
            if parameter.get("in") == "path" and data.draw(st.integers(0, 19), label="drop") > 0:
                params[parameter["name"]] = data.draw(path_values(parameter), label=parameter["name"])
        body = data.draw(bodies(operation, known), label="body")
        kind, authorization = data.draw(authorizations(tokens, takes_input=takes_input), label="authorization")

    response = call(function, method, path, params, body, authorization)

    check_answer(response, operation, fuzz_api.world.issued_secrets, path=path)
    event(_outcome(response))
    # A few expectations that hold whatever the rest of the input is.
    if _secured(operation):
        if kind not in ("read", "admin"):
            assert response.status_code == 401 or (kind in ("no-role", "other-role") and response.status_code == 403), (kind, response.status_code)
        elif kind == "read" and method == "post":
            assert response.status_code == 403
        elif kind == "admin" and "facility" in operation_path_params(operation):
            facility = params.get("facility", "").strip()
            if not re.fullmatch(FACILITY_PATTERN, facility):
                assert (response.status_code, _code(response)) == (400, "invalid_facility")
            elif len(body) > MAX_BODY and method == "post":  # a GET's body is not read
                assert (response.status_code, _code(response)) == (413, "body_too_large")
            elif facility != FACILITY:  # the body is parsed before the facility is looked up
                assert response.status_code in (400, 404) and (response.status_code == 400 or _code(response) == "unknown_facility")
            elif path == "/apps/{facility}/confirm":
                key_id = _json_object(body).get("keyId")
                if isinstance(key_id, str) and set(_json_object(body)) == {"keyId"} and not GUID.fullmatch(key_id):
                    assert (response.status_code, _code(response)) == (400, "invalid_field"), key_id


# ---- the values that used to give a 5xx, each one sent for sure (the generated examples
# above draw them too, but 40 examples need not hit each one)

FACILITY_OPERATIONS = [(path, method) for path, method in OPERATIONS if "facility" in operation_path_params(DOCUMENT["paths"][path][method])]
POST_OPERATIONS = [(path, method) for path, method in OPERATIONS if method == "post"]
# As deep as the body limit allows (deeper is a 413 before any parsing).
NESTED = [
    b"[" * 8_000 + b"]" * 8_000,
    b'{"a":' * 2_600 + b"1" + b"}" * 2_600,
    b'{"reason":' + b"[" * 8_000 + b"]" * 8_000 + b"}",
    b'{"keyId":' + b'{"a":' * 2_600 + b"1" + b"}" * 2_600 + b"}",
]


def answer(fuzz_api, tokens, path: str, method: str, body: bytes, facility: str = FACILITY) -> func.HttpResponse:
    operation = DOCUMENT["paths"][path][method]
    response = call(FUNCTIONS[(path, method)], method, path, {"facility": facility}, body, f"Bearer {tokens['admin']}")
    check_answer(response, operation, fuzz_api.world.issued_secrets, path=path)
    return response


@pytest.mark.parametrize("path, method", FACILITY_OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in FACILITY_OPERATIONS])
@pytest.mark.parametrize("facility", ["a" * 10_000, "acme" * 2_500, "\u00e9" * 10_000, "a" * 9_999 + "\n"], ids=["ascii", "repeated", "unicode", "newline"])
def test_a_facility_of_ten_thousand_characters_is_invalid_facility(fuzz_api, tokens, path, method, facility):
    response = answer(fuzz_api, tokens, path, method, b"{}", facility)
    assert (response.status_code, _code(response)) == (400, "invalid_facility")


@pytest.mark.parametrize("path, method", POST_OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in POST_OPERATIONS])
def test_deep_nesting_and_bodies_that_are_not_utf8_are_clear_4xx(fuzz_api, tokens, path, method):
    bodies = NESTED + [
        '{"reason": "caf\u00e9"}'.encode("latin-1"),
        b'{"reason": "\xc3\x28"}',
        b'{"reason": "\xed\xa0\x80"}',
        b'{"keyId": "\xf8\x88\x80\x80\x80"}',
        b"\x80{}",
        b"\xff\xfe\x00",
        bytes(range(256)),
    ]
    for body in bodies:
        response = answer(fuzz_api, tokens, path, method, body)
        # invalid_json; a UTF-8-encoded surrogate (which Python's decoder lets through) is refused
        # by name: invalid_field (an unpaired surrogate), or unknown_field where it is no field at all.
        assert len(body) <= MAX_BODY and response.status_code == 400, (body[:40], response.status_code)
        assert _code(response) in ("invalid_json", "invalid_field", "unknown_field", "missing_field", "invalid_body")
    # JSON in UTF-16 or UTF-32 (RFC 7159 allowed them; Python's decoder detects them): read, never a 5xx.
    for body in ('{"dryRun": true}'.encode("utf-16-le"), '{"dryRun": true}'.encode("utf-32"), '{"code": "\u00e9"}'.encode("utf-16")):
        answer(fuzz_api, tokens, path, method, body)


@pytest.mark.parametrize("until", EXTREME_UNTIL)
def test_snooze_until_at_the_ends_of_time_is_invalid_field(fuzz_api, tokens, until):
    body = json.dumps({"code": "LOGOUT_URL_MISMATCH", "until": until}).encode()
    response = answer(fuzz_api, tokens, "/apps/{facility}/snooze", "post", body)
    assert (response.status_code, _code(response)) == (400, "invalid_field"), response.get_body()


@pytest.mark.parametrize(
    "reason, status",
    [
        ("\u00e9" * 201, 400),
        ("\U0001f512" * 1_000, 400),
        ("x" * MAX_BODY, 413),  # over 200 characters, or over the body limit
        ("\ud800", 400),
        ("ok \udfff", 400),
        ("\udfff\ud800", 400),  # lone surrogates: JSON escapes only
        ("\U0001f512" * 200, 200),
        ("\u202e\u2066 right to left", 200),
        ("e\u0301" * 100, 200),
        ("nul \x00 and \r\n", 200),
        ("", 200),
    ],
    ids=lambda value: repr(value)[:24],
)
def test_snooze_reasons_huge_and_unicode(fuzz_api, tokens, reason, status):
    until = (datetime.now(UTC) + timedelta(days=10)).strftime("%Y-%m-%d")
    body = json.dumps({"code": "LOGOUT_URL_MISMATCH", "until": until, "reason": reason}).encode()
    response = answer(fuzz_api, tokens, "/apps/{facility}/snooze", "post", body)
    assert response.status_code == status, response.get_body()[:300]
    if status == 200:
        assert json.loads(response.get_body())["reason"] == reason


def test_key_ids_of_every_length(fuzz_api, tokens):
    guid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    lengths = list(range(80)) + [255, 256, 1024, 4096, MAX_BODY - 20, MAX_BODY, 2 * MAX_BODY]
    for n in lengths:
        for key_id in ((guid * (n // len(guid) + 1))[:n], "0" * n):
            response = answer(fuzz_api, tokens, "/apps/{facility}/confirm", "post", json.dumps({"keyId": key_id}).encode())
            if len(key_id) + 12 > MAX_BODY:
                assert (response.status_code, _code(response)) == (413, "body_too_large"), n
            elif key_id == guid:
                assert (response.status_code, _code(response)) == (409, "rotation_conflict")  # a GUID no rotation waits for
            else:
                assert (response.status_code, _code(response)) == (400, "invalid_field"), n
