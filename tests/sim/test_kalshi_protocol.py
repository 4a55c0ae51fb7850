"""ssmd.kalshi: fixed-point formatting/parsing and RSA-PSS signing/verification with a real key."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from ssmd.kalshi import auth, fixedpoint
from ssmd.kalshi.protocol import ERROR_MESSAGES, HEADER_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP, ErrorCode


def test_prices_and_counts_round_trip_exactly_without_float() -> None:
    assert fixedpoint.parse_price("0.5600") == Decimal("0.56")
    assert fixedpoint.format_price(Decimal("0.56")) == "0.5600"
    assert fixedpoint.format_count(Decimal("10")) == "10.00"
    assert fixedpoint.price_units("0.0105") == 105
    assert fixedpoint.count_units("-1.25") == -125
    assert fixedpoint.price_str(105) == "0.0105"
    assert fixedpoint.count_str(-125) == "-1.25"
    assert fixedpoint.count_str(4918_41) == "4918.41"
    assert fixedpoint.units_to_price(9_900) == Decimal("0.99")
    assert fixedpoint.cents(9_900) == 99


@pytest.mark.parametrize(("call", "value"), [
    (fixedpoint.price_units, "0.00001"),
    (fixedpoint.count_units, "0.001"),
    (fixedpoint.parse_price, "abc"),
    (fixedpoint.parse_count, "NaN"),
    (fixedpoint.cents, 105),
    (fixedpoint.whole_contracts, 150),
])
def test_unrepresentable_values_are_refused(call: object, value: object) -> None:
    with pytest.raises(ValueError):
        call(value)  # type: ignore[operator]


def test_error_messages_are_kalshis_exact_strings() -> None:
    assert ERROR_MESSAGES[ErrorCode.UNKNOWN_CHANNEL] == "Unknown channel name"
    assert ERROR_MESSAGES[ErrorCode.ONE_SID_REQUIRED] == "Exactly one subscription ID is required"
    assert ERROR_MESSAGES[ErrorCode.BUFFER_OVERFLOW] == "Subscription buffer overflow"
    assert len(ERROR_MESSAGES) == 28


@pytest.fixture(scope="module")
def key() -> auth.rsa.RSAPrivateKey:
    return auth.generate_private_key()


def test_signature_is_rsa_pss_sha256_salt_32_over_ts_method_path(key: auth.rsa.RSAPrivateKey) -> None:
    sig = base64.b64decode(auth.sign(key, 1700000000000, "get", "/trade-api/v2/markets?limit=5"))
    # Verifies with the exact parameters Kalshi documents, over the path without its query string.
    key.public_key().verify(
        sig, b"1700000000000GET/trade-api/v2/markets",
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256(),
    )


def test_keyring_accepts_good_and_refuses_bad_stale_unknown(key: auth.rsa.RSAPrivateKey) -> None:
    ring = auth.KeyRing({"k1": key.public_key()})
    now = 1_800_000_000_000
    good = auth.auth_headers("k1", key, "GET", "/trade-api/ws/v2", now_ms=now)
    assert ring.check(good, "GET", "/trade-api/ws/v2", now_ms=now + 2_000) is None
    assert ring.check(good, "GET", "/trade-api/ws/v2", now_ms=now + 30_000) is auth.AuthFailure.TIMESTAMP_EXPIRED
    assert ring.check(good, "GET", "/trade-api/v2/markets", now_ms=now) is auth.AuthFailure.BAD_SIGNATURE
    other = auth.generate_private_key()
    forged = auth.auth_headers("k1", other, "GET", "/trade-api/ws/v2", now_ms=now)
    assert ring.check(forged, "GET", "/trade-api/ws/v2", now_ms=now) is auth.AuthFailure.BAD_SIGNATURE
    pkcs1 = {**good, HEADER_SIGNATURE: base64.b64encode(
        key.sign(b"%dGET/trade-api/ws/v2" % now, padding.PKCS1v15(), hashes.SHA256())).decode()}
    assert ring.check(pkcs1, "GET", "/trade-api/ws/v2", now_ms=now) is auth.AuthFailure.BAD_SIGNATURE
    assert ring.check({**good, HEADER_KEY: "nope"}, "GET", "/trade-api/ws/v2", now_ms=now) is auth.AuthFailure.NOT_FOUND
    assert ring.check({**good, HEADER_TIMESTAMP: ""}, "GET", "/trade-api/ws/v2") is auth.AuthFailure.MISSING_HEADERS
    assert ring.check({**good, HEADER_SIGNATURE: "%%%"}, "GET", "/trade-api/ws/v2", now_ms=now) \
        is auth.AuthFailure.BAD_SIGNATURE
    assert auth.AuthFailure.BAD_SIGNATURE.body()["error"]["details"] == "INCORRECT_API_KEY_SIGNATURE"


def test_keys_load_from_pkcs1_pkcs8_and_public_pem(key: auth.rsa.RSAPrivateKey) -> None:
    pem = auth.private_key_pem(key)
    assert pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert auth.load_private_key(pem).private_numbers() == key.private_numbers()
    assert auth.load_public_key(auth.public_key_pem(key.public_key())).public_numbers() == \
        key.public_key().public_numbers()
    assert auth.load_public_key(pem).public_numbers() == key.public_key().public_numbers()
    with pytest.raises(auth.KeyError_):
        auth.load_private_key(b"not a key")
