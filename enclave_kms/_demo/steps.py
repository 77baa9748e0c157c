"""The demo's steps, each a method that returns a one-line outcome or raises DemoStepError.

The order is the story of enclave-ecosystem.md §5 item 6: a test PKI, a local KMS that trusts
it, a key whose policy admits one enclave image, the parent's proxy and credentials hand-off,
the approved enclave's round trip, and the refusals that show the gate is real.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3
import botocore.exceptions

from attestation.nsm import Nsm
from attestation.testing.nsm import SimulatedNsm
from attestation.testing.pki import TestPki
from enclave_kms._demo.policy import (
    APPROVED_IMAGE,
    OTHER_IMAGE,
    DemoImage,
    PolicyBuilder,
    PolicyInputs,
    short_hex,
)
from enclave_kms._demo.processes import (
    DemoStepError,
    ManagedProcess,
    ServerConfig,
    run_audit,
    start_proxy,
    start_server,
)
from enclave_kms._demo.workspace import (
    ACCOUNT_ID,
    REGION,
    DemoCredential,
    Workspace,
    mint_pki,
    new_credentials,
)
from enclave_kms.enclave import (
    Credentials,
    EnclaveError,
    EnclaveSession,
    EnvelopeCipher,
    KmsRequestError,
    parse_message,
)
from enclave_kms.proxy import Credentials as HandoffCredentials
from enclave_kms.proxy import CredentialsReceiver, ProxyError, send_credentials
from enclave_kms.testing import free_loopback_port

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

__all__ = ["ALIAS", "SECRET_MESSAGE", "DemoSteps"]

ALIAS = "alias/payments-enclave"
SECRET_MESSAGE = b"card 4111 1111 1111 1111, exp 12/29: readable only inside the approved enclave"
_CONTEXT = {"purpose": "enclave-kms demo"}
_DENIED = "AccessDeniedException"


def _denied(what: str, call: Callable[[], object]) -> str:
    """Run a call that the key policy must refuse; describe the refusal or raise."""
    try:
        call()
    except KmsRequestError as exc:
        if exc.code == _DENIED:
            return f"{what} refused ({_DENIED})"
        raise DemoStepError(f"{what} failed with {exc.code or 'no answer'}, not {_DENIED}") from exc
    except botocore.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "Unknown"))
        if code == _DENIED:
            return f"{what} refused ({_DENIED})"
        raise DemoStepError(f"{what} failed with {code}, not {_DENIED}") from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise DemoStepError(f"{what}: no answer from KMS ({type(exc).__name__})") from exc
    raise DemoStepError(f"{what} was ALLOWED, but the key policy must refuse it")


class DemoSteps:
    """State shared by the steps of one demo run, and the steps themselves.

    Args:
        workspace: the run's temp directory.
        processes: where started subprocesses are registered so the caller stops them.
        seed: the test PKI seed.
        now: the current time (for the PKI's validity).
        policy: builds the key policy (the default refuses every other image).
    """

    def __init__(
        self,
        workspace: Workspace,
        processes: list[ManagedProcess],
        *,
        seed: int,
        now: Callable[[], datetime],
        policy: PolicyBuilder,
    ) -> None:
        self.ws = workspace
        self._processes = processes
        self._seed = seed
        self._now = now
        self._policy = policy
        self._admin, self._role = new_credentials()
        self._pki: TestPki | None = None
        self._server_port = 0
        self._proxy_port = 0
        self._key_id = ""
        self._enclave_credentials: Credentials | None = None
        self._message = b""
        self._cipher: EnvelopeCipher | None = None
        self._clients: list[KMSClient] = []
        #: Extra lines a step wants shown under its outcome (the runner prints and clears it).
        self.details: list[str] = []

    # --- 1. test PKI ------------------------------------------------------------------------

    def mint_pki(self) -> str:
        """Mint the test PKI and write its root."""
        self._pki = mint_pki(self.ws.root, self._seed, self._now())
        return (
            f"fresh test PKI from seed {self._seed:#x} (DO NOT TRUST); "
            f"root written to {self.ws.trust_root.name}"
        )

    # --- 2. KMS server ----------------------------------------------------------------------

    def start_server(self) -> str:
        """Write credentials and start ``enclave-kms serve``."""
        self.ws.write_credentials((self._admin, self._role))
        self._server_port = free_loopback_port()
        config = ServerConfig(
            port=self._server_port,
            data_dir=self.ws.data_dir,
            credentials_file=self.ws.credentials_file,
            trust_root=self.ws.trust_root,
            region=REGION,
            account_id=ACCOUNT_ID,
        )
        server = start_server(config, self.ws.log("server"))
        self._processes.append(server)
        return (
            f"enclave-kms serve (pid {server.pid}) on http://127.0.0.1:{self._server_port}, "
            f"SQLite store in {self.ws.data_dir.name}/, --trust-root the test root"
        )

    def _kms(self, cred: DemoCredential | Credentials, port: int) -> KMSClient:
        """A boto3 KMS client for 127.0.0.1:``port``, closed by :meth:`close`."""
        session = boto3.session.Session(
            aws_access_key_id=cred.access_key_id,
            aws_secret_access_key=cred.secret_access_key,
            aws_session_token=cred.session_token,
            region_name=REGION,
        )
        client = session.client("kms", endpoint_url=f"http://127.0.0.1:{port}")
        self._clients.append(client)
        return client

    # --- 3. the key and its policy ----------------------------------------------------------

    def create_key(self) -> str:
        """Create the key with the attestation policy, as the account's administrator."""
        role_arn = f"arn:aws:iam::{ACCOUNT_ID}:{self._role.principal}"
        document = self._policy(PolicyInputs(ACCOUNT_ID, role_arn, APPROVED_IMAGE.pcr0.hex()))
        admin = self._kms(self._admin, self._server_port)
        try:
            created = admin.create_key(
                Description=f"data keys for {APPROVED_IMAGE.name} only",
                Policy=json.dumps(document),
            )
            self._key_id = created["KeyMetadata"]["KeyId"]
            admin.create_alias(AliasName=ALIAS, TargetKeyId=self._key_id)
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            raise DemoStepError(
                f"KMS refused to create the key: {error.get('Code')}: {error.get('Message')}"
            ) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise DemoStepError(f"no answer from the KMS server ({type(exc).__name__})") from exc
        return (
            f"key {self._key_id} ({ALIAS}): GenerateDataKey/Decrypt only with "
            f"ImageSha384 = {short_hex(APPROVED_IMAGE.pcr0)} ({APPROVED_IMAGE.name})"
        )

    # --- 4. the parent's proxy --------------------------------------------------------------

    def start_proxy(self) -> str:
        """Start ``enclave-kms proxy`` between the enclave side and the server."""
        self.ws.write_allowlist(self._server_port)
        self._proxy_port = free_loopback_port()
        proxy = start_proxy(
            self._proxy_port, self._server_port, self.ws.allowlist, self.ws.log("proxy")
        )
        self._processes.append(proxy)
        return (
            f"enclave-kms proxy (pid {proxy.pid}) relays tcp:127.0.0.1:{self._proxy_port} -> "
            f"tcp:127.0.0.1:{self._server_port} (allowlisted in {self.ws.allowlist.name})"
        )

    # --- 5. credentials hand-off ------------------------------------------------------------

    def hand_off_credentials(self) -> str:
        """The parent sends the role's temporary credentials to the enclave over a socket."""
        endpoint = f"unix:{self.ws.handoff_socket}"
        sent = HandoffCredentials(
            self._role.access_key_id,
            self._role.secret_access_key,
            self._role.session_token,
            REGION,
        )
        failure: list[BaseException] = []

        def parent() -> None:
            try:
                send_credentials(endpoint, sent, timeout=10.0)
            except ProxyError as exc:
                failure.append(exc)

        try:
            with CredentialsReceiver(endpoint, timeout=10.0) as receiver:
                thread = threading.Thread(target=parent, name="demo-parent-handoff", daemon=True)
                thread.start()
                try:
                    received = receiver.receive()
                finally:
                    thread.join(timeout=15.0)
        except ProxyError as exc:
            raise DemoStepError(f"the enclave did not receive credentials: {exc}") from exc
        if failure:
            raise DemoStepError(f"the parent could not send credentials: {failure[0]}")
        if received != sent:  # compares secrets without ever showing them
            raise DemoStepError("the credentials the enclave received differ from those sent")
        self._enclave_credentials = Credentials(
            received.access_key_id, received.secret_access_key, received.session_token
        )
        return (
            f"parent sent {self._role.masked_id} + session token (secrets not shown) over "
            f"{endpoint}; the enclave replied Ok"
        )

    # --- 6-7. the approved enclave ----------------------------------------------------------

    def _session(self, image: DemoImage) -> EnclaveSession:
        creds = self._enclave_credentials
        if self._pki is None or creds is None:
            raise DemoStepError("an earlier step did not run")
        nsm = Nsm(SimulatedNsm(self._pki, pcrs=image.measurements(self._pki.instance_id)))
        # The enclave's only route to KMS is the proxy's enclave-side port. The client is built
        # here (rather than by the session) so close() can end its keep-alive connections and
        # the proxy has nothing left to drain when it stops.
        return EnclaveSession(nsm=nsm, kms_client=self._kms(creds, self._proxy_port))

    def close(self) -> None:
        """Close the KMS clients the steps opened (their pooled connections)."""
        for client in self._clients:
            client.close()
        self._clients.clear()

    def enclave_encrypts(self) -> str:
        """The approved enclave attests, gets a data key with Recipient and encrypts."""
        self._cipher = EnvelopeCipher(self._session(APPROVED_IMAGE))
        try:
            self._message = self._cipher.encrypt(
                SECRET_MESSAGE, key_id=ALIAS, encryption_context=_CONTEXT
            )
        except EnclaveError as exc:
            raise DemoStepError(f"GenerateDataKey was refused or failed: {exc}") from exc
        return (
            f"enclave {APPROVED_IMAGE.name} (PCR0 {short_hex(APPROVED_IMAGE.pcr0)}): "
            f"GenerateDataKey with Recipient allowed; {len(SECRET_MESSAGE)}-byte secret encrypted"
        )

    def enclave_decrypts(self) -> str:
        """The approved enclave decrypts the message again and checks the round trip."""
        if self._cipher is None:
            raise DemoStepError("an earlier step did not run")
        try:
            plaintext = self._cipher.decrypt(self._message)
        except EnclaveError as exc:
            raise DemoStepError(f"Decrypt was refused or failed: {exc}") from exc
        if plaintext != SECRET_MESSAGE:
            raise DemoStepError("the decrypted message differs from the original")
        return "Decrypt with Recipient allowed; the decrypted message matches the original"

    # --- 8-9. the refusals ------------------------------------------------------------------

    def other_enclave_refused(self) -> str:
        """An enclave built from another image asks for the same key and must be refused."""
        cipher = EnvelopeCipher(self._session(OTHER_IMAGE))
        generate = _denied(
            "GenerateDataKey",
            lambda: cipher.encrypt(b"x", key_id=ALIAS, encryption_context=_CONTEXT),
        )
        decrypt = _denied("Decrypt of the secret", lambda: cipher.decrypt(self._message))
        who = f"enclave {OTHER_IMAGE.name} (PCR0 {short_hex(OTHER_IMAGE.pcr0)})"
        return f"{who}: {generate}; {decrypt}"

    def parent_refused(self) -> str:
        """The parent, holding the same credentials, calls KMS directly without a Recipient."""
        parsed = parse_message(self._message)
        kms = self._kms(self._role, self._server_port)
        generate = _denied(
            "plain GenerateDataKey",
            lambda: kms.generate_data_key(KeyId=ALIAS, KeySpec="AES_256"),
        )
        decrypt = _denied(
            "plain Decrypt of the enclave's data key",
            lambda: kms.decrypt(
                CiphertextBlob=parsed.ciphertext_blob,
                EncryptionContext=dict(parsed.encryption_context),
            ),
        )
        return f"parent with the same credentials, no attestation: {generate}; {decrypt}"

    # --- 10. the audit log ------------------------------------------------------------------

    def audit(self, last: int = 8) -> str:
        """Read the key's audit records with ``enclave-kms audit``; list the last ones."""
        records = run_audit(self.ws.data_dir, self._key_id, REGION, ACCOUNT_ID)
        data_ops = [r for r in records if r.get("operation") in ("GenerateDataKey", "Decrypt")]
        allowed = sum(1 for r in data_ops if r.get("outcome") == "success")
        denied = sum(1 for r in data_ops if r.get("outcome") == _DENIED)
        # Steps 6-9 made 2 allowed and 4 refused calls; the log must show at least those.
        if allowed < 2 or denied < 4:
            raise DemoStepError(
                f"the audit log shows {allowed} allowed and {denied} refused data-key calls; "
                "expected at least 2 and 4"
            )
        self.details.extend(_audit_line(record) for record in records[-last:])
        return (
            f"{len(records)} records for the key: {allowed} data-key calls allowed, "
            f"{denied} refused"
        )


def _audit_line(record: dict[str, Any]) -> str:
    when = str(record.get("time", ""))
    with contextlib.suppress(ValueError):
        when = datetime.fromisoformat(when).strftime("%H:%M:%S")
    principal = str(record.get("principal_arn", "-")).rsplit(":", 1)[-1]
    image = record.get("attestation_image_digest")
    pcr0 = f"PCR0 {short_hex(str(image))}" if image else "no attestation"
    return (
        f"{when}  {record.get('operation', '?'):<16} {record.get('outcome', '?'):<22} "
        f"{principal:<32} {pcr0}"
    )
