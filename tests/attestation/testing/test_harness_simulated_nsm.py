"""SimulatedNsm: the NSM state machine and error codes, through the production Nsm client."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attestation.nsm import ErrorCode, Nsm, NsmError
from attestation.testing.measurements import BootMeasurements
from attestation.testing.nsm import SimulatedNsm
from attestation.testing.pki import TestPki

T0 = datetime(2025, 3, 1, 8, 0, 0, 250000, tzinfo=UTC)
PKI = TestPki.create(11, valid_from=T0 - timedelta(hours=1))


def make(**kwargs: object) -> tuple[Nsm, SimulatedNsm]:
    sim = SimulatedNsm(PKI, clock=lambda: T0, **kwargs)  # type: ignore[arg-type]
    return Nsm(sim), sim


def nsm_code(call) -> ErrorCode:  # type: ignore[no-untyped-def]
    with pytest.raises(NsmError) as info:
        call()
    return info.value.code


def test_describe_nsm() -> None:
    nsm, sim = make()
    d = nsm.describe_nsm()
    assert (d.max_pcrs, d.digest, d.module_id) == (32, "SHA384", sim.module_id)
    assert d.locked_pcrs == frozenset(range(16))
    assert (d.version_major, d.version_minor, d.version_patch) == (1, 0, 0)


def test_boot_pcrs_come_from_measurements_and_are_locked() -> None:
    boot = BootMeasurements(image=b"img", instance_id="i-0123456789abcdef0")
    nsm, _ = make(pcrs=boot)
    pcr0 = nsm.describe_pcr(0)
    assert pcr0.locked
    assert pcr0.data == hashlib.sha384(bytes(48) + hashlib.sha384(b"img").digest()).digest()
    assert nsm.describe_pcr(4).data == hashlib.sha384(bytes(48) + b"i-0123456789abcdef0").digest()
    assert nsm.describe_pcr(16).data == bytes(48)
    assert not nsm.describe_pcr(16).locked


def test_extend_is_sha384_of_old_and_data() -> None:
    nsm, _ = make()
    first = nsm.extend_pcr(16, b"a")
    assert first == hashlib.sha384(bytes(48) + b"a").digest()
    second = nsm.extend_pcr(16, b"b")
    assert second == hashlib.sha384(first + b"b").digest()
    assert nsm.describe_pcr(16).data == second


def test_extending_a_boot_locked_pcr_is_read_only_index() -> None:
    nsm, _ = make()
    assert nsm_code(lambda: nsm.extend_pcr(0, b"x")) is ErrorCode.ReadOnlyIndex


def test_lock_then_extend_and_relock_fail() -> None:
    nsm, _ = make()
    nsm.extend_pcr(20, b"x")
    nsm.lock_pcr(20)
    assert nsm.describe_pcr(20).locked
    assert nsm_code(lambda: nsm.extend_pcr(20, b"y")) is ErrorCode.ReadOnlyIndex
    assert nsm_code(lambda: nsm.lock_pcr(20)) is ErrorCode.ReadOnlyIndex
    # nsm-check expects locking an already-locked boot PCR to fail too.
    assert nsm_code(lambda: nsm.lock_pcr(3)) is ErrorCode.ReadOnlyIndex


@pytest.mark.parametrize("index", [32, 33, 1000, 65535])
def test_index_out_of_range_is_invalid_index(index: int) -> None:
    nsm, _ = make()
    for call in (
        lambda: nsm.describe_pcr(index),
        lambda: nsm.extend_pcr(index, b"x"),
        lambda: nsm.lock_pcr(index),
    ):
        assert nsm_code(call) is ErrorCode.InvalidIndex


def test_lock_pcrs_range() -> None:
    nsm, _ = make()
    nsm.lock_pcrs(18)  # already-locked 0..15 are fine
    assert nsm.describe_nsm().locked_pcrs == frozenset(range(18))
    nsm.lock_pcrs(32)
    assert nsm.describe_nsm().locked_pcrs == frozenset(range(32))
    assert nsm_code(lambda: nsm.lock_pcrs(33)) is ErrorCode.InvalidIndex


def test_get_random_is_256_bytes_from_the_injected_rng() -> None:
    seen: list[int] = []

    def rng(n: int) -> bytes:
        seen.append(n)
        return bytes([7]) * n

    nsm, _ = make(rng=rng)
    assert nsm.get_random() == bytes([7]) * 256
    assert seen == [256]


def test_attestation_carries_locked_pcrs_ascending_and_the_clock() -> None:
    nsm, _ = make()
    nsm.extend_pcr(17, b"app")
    nsm.lock_pcr(17)
    doc = nsm.get_attestation_doc(public_key=b"k", nonce=b"n")
    payload = cbor2.loads(cbor2.loads(doc)[2])
    assert list(payload["pcrs"]) == [*range(16), 17]
    assert payload["pcrs"][17] == hashlib.sha384(bytes(48) + b"app").digest()
    assert payload["timestamp"] == 1740816000250
    assert (payload["public_key"], payload["user_data"], payload["nonce"]) == (b"k", None, b"n")


def test_debug_mode_zeroes_pcr0_to_2() -> None:
    nsm, _ = make(debug=True)
    assert all(nsm.describe_pcr(i).data == bytes(48) for i in range(3))
    assert nsm.describe_pcr(4).data != bytes(48)


def test_request_over_4096_bytes_is_input_too_large() -> None:
    _, sim = make()
    raw = cbor2.dumps(
        {"Attestation": {"user_data": b"x" * 4100, "nonce": None, "public_key": None}}
    )
    assert cbor2.loads(sim.send(raw)) == {"Error": "InputTooLarge"}
    nsm = Nsm(sim)
    assert (
        nsm_code(lambda: nsm.get_attestation_doc(user_data=b"x" * 4100)) is ErrorCode.InputTooLarge
    )


def test_three_1024_byte_fields_fit() -> None:
    nsm, _ = make()
    doc = nsm.get_attestation_doc(public_key=b"k" * 1024, user_data=b"u" * 1024, nonce=b"n" * 1024)
    assert 7000 < len(doc) < 12288


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        (cbor2.dumps("Reboot"), "InvalidOperation"),
        (b"\xff\xff", "InvalidOperation"),
        (b"", "InvalidOperation"),
        (cbor2.dumps({"DescribePCR": {"index": -1}}), "InvalidArgument"),
        (cbor2.dumps({"LockPCRs": {"range": "all"}}), "InvalidArgument"),
    ],
)
def test_garbage_gets_an_error_response(raw: bytes, name: str) -> None:
    _, sim = make()
    assert cbor2.loads(sim.send(raw)) == {"Error": name}


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=64)
    | st.recursive(
        st.none() | st.booleans() | st.integers() | st.binary(max_size=8) | st.text(max_size=12),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3)
        ),
        max_leaves=8,
    ).map(cbor2.dumps)
)
def test_send_never_raises(raw: bytes) -> None:
    _, sim = make()
    response = cbor2.loads(sim.send(raw))
    assert isinstance(response, str | dict)


def test_leaf_is_reissued_near_expiry() -> None:
    now = [T0]
    sim = SimulatedNsm(PKI, clock=lambda: now[0])
    nsm = Nsm(sim)

    def leaf_der() -> bytes:
        return bytes(cbor2.loads(cbor2.loads(nsm.get_attestation_doc())[2])["certificate"])

    first = leaf_der()
    now[0] = T0 + timedelta(hours=1)
    assert leaf_der() == first
    now[0] = T0 + timedelta(hours=2, minutes=45)
    assert leaf_der() != first
