"""Run the demo's steps in order, print each outcome, and always clean up.

A step either returns its one-line outcome or raises; any exception ends the run with a
``[FAIL]`` line that says what went wrong (never a traceback), then the subprocesses are
stopped and the workspace is removed (unless kept).
"""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from enclave_kms._demo.policy import PolicyBuilder, attested_only_policy
from enclave_kms._demo.processes import DemoStepError, ManagedProcess
from enclave_kms._demo.steps import DemoSteps
from enclave_kms._demo.workspace import ACCOUNT_ID, REGION, Workspace

__all__ = ["DemoResult", "StepOutcome", "run_demo"]

_INDENT = " " * 10


@dataclass(frozen=True)
class StepOutcome:
    """How one step ended.

    Attributes:
        number: 1-based position in the demo (0 for stopping a process at the end).
        title: the step's short name.
        ok: whether it behaved as it must (an expected refusal that happened is ok).
        summary: the one-line outcome, or what went wrong.
    """

    number: int
    title: str
    ok: bool
    summary: str


@dataclass(frozen=True)
class DemoResult:
    """The outcome of :func:`run_demo`.

    Attributes:
        exit_code: 0 when every step behaved as it must, else 1.
        steps: the steps that ran, in order, then any process that did not stop cleanly.
        workspace: the temp directory (removed unless ``kept``).
        kept: whether the workspace was left on disk.
        process_ids: the subprocesses the demo started (all stopped when this is returned).
    """

    exit_code: int
    steps: tuple[StepOutcome, ...]
    workspace: Path
    kept: bool
    process_ids: tuple[int, ...]


def _plan(steps: DemoSteps) -> list[tuple[str, str, Callable[[], str]]]:
    return [
        ("Test PKI",
         "Stands in for the AWS Nitro root: the local KMS trusts it only because it is started "
         "with --trust-root. Documents it signs are worthless anywhere else.",
         steps.mint_pki),
        ("KMS server",
         "A KMS-compatible service (a separate process) that verifies attestation documents and "
         "evaluates kms:RecipientAttestation:* conditions in key policies, as AWS KMS does.",
         steps.start_server),
        ("Key policy",
         "PCR0 comes from the demo EIF description. The administrator can manage the key but "
         "not use it; without an attestation document nobody gets a data key.",
         steps.create_key),
        ("Parent proxy",
         "TCP stands in for vsock here (no vsock on this machine). On EC2 the route is "
         "vsock:3:8000 -> kms.<region>.amazonaws.com:443, the enclave's only way out.",
         steps.start_proxy),
        ("Credentials hand-off",
         "An enclave cannot reach instance metadata, so the parent passes its role's temporary "
         "credentials in (kmstool's SetClient message), here over a unix socket.",
         steps.hand_off_credentials),
        ("Enclave encrypts",
         "The simulated NSM signed a document with the enclave's PCRs and RSA key; KMS checked "
         "PCR0 and returned the data key only as CiphertextForRecipient, through the proxy.",
         steps.enclave_encrypts),
        ("Enclave decrypts",
         "Decrypt also answers through CiphertextForRecipient: the parent and the proxy relay "
         "only ciphertext, never the data key.",
         steps.enclave_decrypts),
        ("Other image refused",
         "Same credentials, same proxy, a validly signed document: only PCR0 differs, and that "
         "is enough for KMS to refuse.",
         steps.other_enclave_refused),
        ("Parent refused",
         "The parent holds the credentials and sees every byte, yet gets no plaintext: the "
         "policy denies any data-key call that carries no attestation.",
         steps.parent_refused),
        ("Audit log",
         "Every allowed and refused call is recorded with the caller and the PCR0 that asked "
         "(enclave-kms audit reads the same store).",
         steps.audit),
    ]  # fmt: skip


def run_demo(
    *,
    keep: bool = False,
    out: TextIO | None = None,
    seed: int | None = None,
    policy: PolicyBuilder = attested_only_policy,
    workspace_parent: Path | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> DemoResult:
    """Run the whole Nitro flow on this machine and print each step.

    Args:
        keep: leave the workspace (store, logs, test PKI, credentials) for inspection.
        out: where to print (``sys.stdout`` by default).
        seed: the test PKI seed (random by default).
        policy: builds the key policy; the default admits only the approved image. A policy
            that admits more makes the "Other image refused" step fail (and the run exit 1).
        workspace_parent: where to create the temp workspace (the system temp dir by default).
        now: the current time, for the test PKI's validity.

    Returns:
        The result; ``exit_code`` is 0 only if every step behaved as it must.
    """
    stream = out if out is not None else sys.stdout

    def say(line: str = "") -> None:
        print(line, file=stream, flush=True)

    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="ekms-demo-", dir=workspace_parent))
    workspace = Workspace(root)
    processes: list[ManagedProcess] = []
    steps = DemoSteps(
        workspace,
        processes,
        seed=seed if seed is not None else secrets.randbits(64),
        now=now,
        policy=policy,
    )
    say("enclave-kms demo: an enclave gets a KMS data key only if its PCR0 matches the key policy")
    say(f"workspace: {root}")
    say()
    outcomes: list[StepOutcome] = []
    try:
        complete = _run_steps(steps, processes, outcomes, say)
    finally:
        # Also on KeyboardInterrupt: nothing of the run stays behind unless asked for.
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    ok = complete and all(o.ok for o in outcomes)
    if keep:
        say(f"workspace kept at {root} (it holds throwaway credentials; delete it when done):")
        say(f"{_INDENT}server.log, proxy.log, kms-data/ (store and audit), test-pki/, *.pem")
        say(
            f"{_INDENT}enclave-kms audit --data-dir {workspace.data_dir} "
            f"--region {REGION} --account-id {ACCOUNT_ID}"
        )
    elapsed = time.monotonic() - started
    if ok:
        say(f"demo passed: {len(outcomes)} steps in {elapsed:.1f} s")
    else:
        failed = next((o for o in outcomes if not o.ok), None)
        where = ""
        if failed is not None:
            where = (
                f" at step {failed.number} ({failed.title})"
                if failed.number
                else (f" ({failed.title})")
            )
        hint = "" if keep else "; rerun with --keep to inspect the logs"
        say(f"demo FAILED{where} after {elapsed:.1f} s{hint}")
    return DemoResult(
        exit_code=0 if ok else 1,
        steps=tuple(outcomes),
        workspace=root,
        kept=keep,
        process_ids=tuple(p.pid for p in processes),
    )


def _run_steps(
    steps: DemoSteps,
    processes: list[ManagedProcess],
    outcomes: list[StepOutcome],
    say: Callable[[str], None],
) -> bool:
    """Run the plan until a step fails, then stop the processes; True if every step ran."""
    plan = _plan(steps)
    try:
        for number, (title, why, action) in enumerate(plan, 1):
            outcome = _run_step(number, title, action)
            outcomes.append(outcome)
            say(f"{'[ ok ]' if outcome.ok else '[FAIL]'} {number:>2}. {title}: {outcome.summary}")
            if not outcome.ok:
                break
            say(f"{_INDENT}{why}")
            for line in steps.details:
                say(f"{_INDENT}  {line}")
            steps.details.clear()
    finally:
        steps.close()
        # Stop in reverse order of starting: the proxy before the server it relays to.
        for process in reversed(processes):
            stopped = _stop(process)
            say(f"{'[ ok ]' if stopped.ok else '[FAIL]'} {stopped.summary}")
            if not stopped.ok:
                outcomes.append(stopped)
    return len([o for o in outcomes if o.number]) == len(plan)


def _stop(process: ManagedProcess) -> StepOutcome:
    try:
        how = process.stop()
    except DemoStepError as exc:
        return StepOutcome(0, f"stop the {process.name}", False, str(exc))
    return StepOutcome(
        0, f"stop the {process.name}", True, f"{process.name} (pid {process.pid}) {how}"
    )


def _run_step(number: int, title: str, action: Callable[[], str]) -> StepOutcome:
    try:
        return StepOutcome(number, title, True, action())
    except DemoStepError as exc:
        return StepOutcome(number, title, False, str(exc))
    # The demo's contract is "a failing step prints what failed": whatever a library raised
    # becomes that line (its type and message; our messages never carry secrets).
    except Exception as exc:
        return StepOutcome(number, title, False, f"unexpected {type(exc).__name__}: {exc}")
