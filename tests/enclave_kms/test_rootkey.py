"""Root key: sources, file creation, wrapping bound to key id and version, mismatch detection."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from enclave_kms._rootkey import (
    ROOT_KEY_ENV,
    ROOT_KEY_FILE_ENV,
    RootKey,
    RootKeyError,
    RootKeyMismatchError,
    load_root_key,
)
from enclave_kms.service import open_service
from enclave_kms.store.sqlite import SqliteStore

KEY = bytes(range(32))


def test_generated_file_is_0600_and_stable(tmp_path: Path) -> None:
    first = load_root_key(tmp_path, environ={})
    path = tmp_path / "root.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_root_key(tmp_path, environ={})
    assert first.check_value() == again.check_value()


def test_env_base64_wins_over_the_file(tmp_path: Path) -> None:
    env = {ROOT_KEY_ENV: base64.b64encode(KEY).decode()}
    assert load_root_key(tmp_path, environ=env).check_value() == RootKey(KEY).check_value()
    assert not (tmp_path / "root.key").exists()


def test_key_file_env(tmp_path: Path) -> None:
    f = tmp_path / "k.bin"
    f.write_bytes(KEY)
    f.chmod(0o600)
    root = load_root_key(tmp_path, environ={ROOT_KEY_FILE_ENV: str(f)})
    assert root.check_value() == RootKey(KEY).check_value()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620])
def test_a_key_file_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    f = tmp_path / "k.bin"
    f.write_bytes(KEY)
    f.chmod(mode)
    with pytest.raises(RootKeyError, match="chmod 600"):
        load_root_key(tmp_path, environ={ROOT_KEY_FILE_ENV: str(f)})
    generated = tmp_path / "data"
    load_root_key(generated, environ={})
    (generated / "root.key").chmod(mode)
    with pytest.raises(RootKeyError, match="chmod 600"):
        load_root_key(generated, environ={})


@pytest.mark.parametrize("value", ["bm90LTMyLWJ5dGVz", "%%%"])
def test_malformed_env_key_is_a_clear_error(tmp_path: Path, value: str) -> None:
    with pytest.raises(RootKeyError, match=ROOT_KEY_ENV):
        load_root_key(tmp_path, environ={ROOT_KEY_ENV: value})


def test_wrap_is_bound_to_key_id_and_version() -> None:
    root = RootKey(KEY)
    wrapped = root.wrap("k1", 1, b"secret material")
    assert b"secret material" not in wrapped
    assert root.unwrap("k1", 1, wrapped) == bytearray(b"secret material")
    for key_id, version in (("k2", 1), ("k1", 2)):
        with pytest.raises(RootKeyError):
            root.unwrap(key_id, version, wrapped)
    with pytest.raises(RootKeyError):
        RootKey(os.urandom(32)).unwrap("k1", 1, wrapped)


def test_repr_hides_the_key() -> None:
    assert KEY.hex() not in repr(RootKey(KEY))


def test_store_refuses_a_different_root_key(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "db", RootKey(KEY)).close()
    with pytest.raises(RootKeyMismatchError, match="does not match"):
        SqliteStore(tmp_path / "db", RootKey(os.urandom(32)))


def test_open_service_with_a_lost_root_key_fails_at_startup(tmp_path: Path) -> None:
    open_service(tmp_path, region="eu-west-1", account_id="111122223333", environ={}).close()
    (tmp_path / "root.key").unlink()
    with pytest.raises(RootKeyMismatchError):
        open_service(tmp_path, region="eu-west-1", account_id="111122223333", environ={})


def test_record_macs_depend_on_the_root_key_and_are_not_the_check_value() -> None:
    a, b = RootKey(bytes(32)), RootKey(bytes(range(32)))
    assert a.record_mac(b"record") == RootKey(bytes(32)).record_mac(b"record")
    assert a.record_mac(b"record") != b.record_mac(b"record")
    assert a.record_mac(b"record") != a.record_mac(b"recorD")
    assert a.record_mac(b"enclave-kms root key check value v1").hex() != a.check_value()
    assert len(a.record_mac(b"")) == 32
