"""``enclave-kms demo``: the whole Nitro flow on one machine, and its failure modes.

The full runs start the real server and proxy subprocesses (a few seconds each); the policy
tests evaluate the demo's key policy directly, without a server.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from enclave_kms._demo import (
    APPROVED_IMAGE,
    OTHER_IMAGE,
    PolicyInputs,
    attested_only_policy,
    register,
    run_demo,
)
from enclave_kms.policy import AuthorizationRequest, KeyPolicy, attestation_condition_keys, evaluate

ACCOUNT = "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/payments-enclave-parent"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"

STEP_TITLES = (
    "Test PKI",
    "KMS server",
    "Key policy",
    "Parent proxy",
    "Credentials hand-off",
    "Enclave encrypts",
    "Enclave decrypts",
    "Other image refused",
    "Parent refused",
    "Audit log",
)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# --- the full flow ---------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_command_runs_every_step_and_keeps_the_workspace(tmp_path: Path) -> None:
    # The command as a user runs it; TMPDIR puts the kept workspace under tmp_path.
    done = subprocess.run(
        [sys.executable, "-m", "enclave_kms._demo", "--keep"],
        env={**os.environ, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    for number, title in enumerate(STEP_TITLES, 1):
        assert re.search(rf"^\[ ok \] +{number}\. {re.escape(title)}: ", done.stdout, re.M), title
    # Each step's outcome, in the words the user reads.
    assert "DO NOT TRUST" in done.stdout
    assert "stands in for vsock" in done.stdout.lower()
    assert "GenerateDataKey with Recipient allowed" in done.stdout
    assert "the decrypted message matches the original" in done.stdout
    other = next(line for line in done.stdout.splitlines() if "8. Other image refused" in line)
    assert "GenerateDataKey refused (AccessDeniedException)" in other
    assert "Decrypt of the secret refused (AccessDeniedException)" in other
    parent = next(line for line in done.stdout.splitlines() if "9. Parent refused" in line)
    assert "plain GenerateDataKey refused (AccessDeniedException)" in parent
    assert "2 data-key calls allowed, 4 refused" in done.stdout
    assert "parent proxy" in done.stdout and "KMS server" in done.stdout
    assert done.stdout.count("stopped cleanly") == 2
    assert "demo passed: 10 steps" in done.stdout
    assert "Traceback" not in output
    # PCR0 is shown shortened, never in full.
    assert APPROVED_IMAGE.pcr0.hex()[:12] in done.stdout
    assert APPROVED_IMAGE.pcr0.hex() not in done.stdout

    match = re.search(r"workspace kept at (\S+)", done.stdout)
    assert match, done.stdout
    kept = Path(match.group(1))
    assert kept.parent == tmp_path
    assert (kept / "kms-data").is_dir() and (kept / "proxy.log").is_file()
    # The audit store is readable with the command the demo prints.
    audit = subprocess.run(
        [
            sys.executable,
            "-m",
            "enclave_kms",
            "audit",
            "--json",
            "--data-dir",
            str(kept / "kms-data"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    outcomes = [json.loads(line)["outcome"] for line in audit.stdout.splitlines()]
    assert outcomes.count("AccessDeniedException") == 4
    # The handed-off secrets never reach the output or the logs.
    creds = json.loads((kept / "credentials.json").read_text())["credentials"]
    logs = "".join(p.read_text() for p in kept.glob("*.log"))
    for cred in creds:
        for secret in (cred["secret_access_key"], cred.get("session_token")):
            if secret:
                assert secret not in output
                assert secret not in logs


def _admits_any_attested_enclave(inputs: PolicyInputs) -> dict[str, Any]:
    """A misconfigured policy: the condition checks that a document exists, not which image."""
    policy = attested_only_policy(inputs)
    policy["Statement"][1]["Condition"] = {
        "Null": {"kms:RecipientAttestation:ImageSha384": "false"}
    }
    return policy


@pytest.mark.slow
def test_demo_fails_when_the_policy_lets_another_image_in(tmp_path: Path) -> None:
    out = io.StringIO()
    result = run_demo(out=out, policy=_admits_any_attested_enclave, workspace_parent=tmp_path)
    text = out.getvalue()
    assert result.exit_code == 1, text
    failed = result.steps[-1]
    assert (failed.number, failed.title, failed.ok) == (8, "Other image refused", False)
    assert "GenerateDataKey was ALLOWED, but the key policy must refuse it" in failed.summary
    assert all(step.ok for step in result.steps[:-1])
    assert "[FAIL]  8. Other image refused" in text
    assert "9. Parent refused" not in text
    assert "demo FAILED at step 8 (Other image refused)" in text
    assert "Traceback" not in text
    # Everything was stopped and removed even though the run failed.
    assert len(result.process_ids) == 2
    assert all(_gone(pid) for pid in result.process_ids)
    assert text.count("stopped cleanly") == 2
    assert not result.workspace.exists()


def _locks_out_the_administrator(inputs: PolicyInputs) -> dict[str, Any]:
    policy = attested_only_policy(inputs)
    del policy["Statement"][0]
    return policy


@pytest.mark.slow
def test_demo_reports_a_refused_step_and_stops_the_server(tmp_path: Path) -> None:
    out = io.StringIO()
    result = run_demo(out=out, policy=_locks_out_the_administrator, workspace_parent=tmp_path)
    text = out.getvalue()
    assert result.exit_code == 1, text
    assert [s.title for s in result.steps] == list(STEP_TITLES[:3])
    assert "KMS refused to create the key: MalformedPolicyDocumentException" in text
    assert "demo FAILED at step 3 (Key policy)" in text
    assert "Traceback" not in text
    assert len(result.process_ids) == 1  # the proxy was never started
    assert _gone(result.process_ids[0])
    assert not result.workspace.exists()


# --- the demo's key policy, evaluated directly -------------------------------------------------


def _decide(principal: str, action: str, pcr0: bytes | None) -> bool:
    policy = KeyPolicy.parse(
        json.dumps(attested_only_policy(PolicyInputs(ACCOUNT, ROLE, APPROVED_IMAGE.pcr0.hex())))
    )
    context = {} if pcr0 is None else attestation_condition_keys({0: pcr0})
    request = AuthorizationRequest(
        principal_arn=principal,
        account_id=ACCOUNT,
        action=action,
        resource_arn=KEY_ARN,
        context=context,
    )
    return evaluate(policy, request).allowed


@pytest.mark.parametrize("action", ["kms:GenerateDataKey", "kms:Decrypt"])
def test_policy_admits_only_the_approved_image(action: str) -> None:
    assert _decide(ROLE, action, APPROVED_IMAGE.pcr0)
    assert not _decide(ROLE, action, OTHER_IMAGE.pcr0)
    assert not _decide(ROLE, action, None)


@pytest.mark.parametrize("action", ["kms:GenerateDataKey", "kms:Decrypt", "kms:CreateGrant"])
def test_policy_administrator_cannot_use_the_key(action: str) -> None:
    assert not _decide(ROOT, action, None)
    assert not _decide(ROOT, action, APPROVED_IMAGE.pcr0)


def test_policy_administrator_can_manage_the_key() -> None:
    # KMS's lockout safety check needs kms:PutKeyPolicy for the creator.
    assert _decide(ROOT, "kms:PutKeyPolicy", None)
    assert _decide(ROOT, "kms:DescribeKey", None)
    assert not _decide(ROLE, "kms:PutKeyPolicy", APPROVED_IMAGE.pcr0)


def test_demo_images_differ_only_where_a_rebuild_would() -> None:
    approved = APPROVED_IMAGE.measurements("i-0123456789abcdef0").pcrs()
    other = OTHER_IMAGE.measurements("i-0123456789abcdef0").pcrs()
    assert approved[0] == APPROVED_IMAGE.pcr0 != OTHER_IMAGE.pcr0 == other[0]
    assert approved[1] == other[1]  # same kernel
    assert approved[2] != other[2]  # different application
    assert approved[4] == other[4]  # same parent instance


def test_project_cli_offers_the_demo() -> None:
    from enclave_kms import cli

    args = cli.build_parser().parse_args(["demo", "--keep"])
    assert args.command == "demo" and args.keep is True and callable(args.func)


def test_register_adds_the_demo_subcommand() -> None:
    parser = argparse.ArgumentParser(prog="enclave-kms")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["demo", "--keep", "--seed", "0x10"])
    assert (args.command, args.keep, args.seed) == ("demo", True, 16)
    assert callable(args.func)
    defaults = parser.parse_args(["demo"])
    assert (defaults.keep, defaults.seed) == (False, None)
