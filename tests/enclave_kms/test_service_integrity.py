"""A key policy rewritten in the database itself (no root key) does not open the key: the
service refuses the record as an internal error, whether or not it had the record cached."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import pytest
from test_service_support import (
    ACCOUNT,
    APP_CALLER,
    ROOT_CALLER,
    PinnedClock,
    make_service,
    new_key,
)
from test_service_support import clock as clock
from test_service_support import db_path as db_path
from test_service_support import service as service

from enclave_kms.errors import AccessDeniedException, KMSInternalException
from enclave_kms.model import GenerateDataKeyRequest
from enclave_kms.service import KmsService

OPEN_TO_THE_APP = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/app"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }
)


def _rewrite_policy(db_path: Path | str, key_id: str) -> None:
    """What someone with write access to the database, but not the root key, can do."""
    if isinstance(db_path, Path):
        with sqlite3.connect(db_path) as db:
            db.execute("UPDATE keys SET policy=? WHERE key_id=?", (OPEN_TO_THE_APP, key_id))
        return
    import psycopg

    with psycopg.connect(db_path, autocommit=True) as conn:
        conn.execute("UPDATE keys SET policy=%s WHERE key_id=%s", (OPEN_TO_THE_APP, key_id))


@pytest.mark.parametrize("cache", ["cold", "warm"])
def test_a_policy_rewritten_in_the_database_does_not_let_anyone_in(
    service: KmsService,
    db_path: Path | str,
    clock: PinnedClock,
    cache: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    kid = new_key(service)
    gdk = GenerateDataKeyRequest(key_id=kid, key_spec="AES_256")
    with pytest.raises(AccessDeniedException):
        service.generate_data_key(APP_CALLER, gdk)
    if cache == "warm":
        service.generate_data_key(ROOT_CALLER, gdk)  # the key record is now cached
        target = service
    else:
        target = make_service(db_path, clock)
    _rewrite_policy(db_path, kid)
    with caplog.at_level(logging.ERROR), pytest.raises(KMSInternalException):
        target.generate_data_key(APP_CALLER, gdk)
    assert f"key record {kid} fails its integrity check" in caplog.text
    # Nobody gets the key through it, not even its owner, until an operator restores it.
    with pytest.raises(KMSInternalException):
        target.generate_data_key(ROOT_CALLER, gdk)
