"""vsock-proxy's allowlist: the YAML format and its matching rule.

The file format is vsock-proxy's, so an existing ``/etc/nitro_enclaves/vsock-proxy.yaml``
works unchanged::

    allowlist:
    - {address: kms.us-east-1.amazonaws.com, port: 443}
    - {address: kms-fips.us-east-1.amazonaws.com, port: 443}

Matching follows vsock-proxy (checked once at startup, for each route with a TCP upstream):

1. entries whose ``port`` differs from the remote port are skipped;
2. an entry matches if its ``address`` string equals the remote address;
3. otherwise the entry's address is resolved and matches if any of its IPs is one of the IPs
   the remote address resolves to (``-4``/``-6`` restrict both sides).

Entries that do not resolve are skipped and logged at debug level only: vsock-proxy's
"Unable to resolve allow listed host" warnings for every other region confused users (#648).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from .errors import AllowlistError, ProxyConfigError

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "NOT_ALLOWED",
    "Allowlist",
    "AllowlistEntry",
    "AllowlistMatch",
    "reject_numeric_remote",
    "system_resolve",
]

DEFAULT_CONFIG_PATH = "/etc/nitro_enclaves/vsock-proxy.yaml"
#: vsock-proxy's exact wording, kept so existing runbooks and log searches still work.
NOT_ALLOWED = "The given address and port are not allowed"

_log = logging.getLogger("enclave_kms.proxy")

#: (host, family) -> IP strings; raises OSError when the name does not resolve.
Resolve = Callable[[str, int], Iterable[str]]


def _literal(host: str) -> list[str] | None:
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        return None


def system_resolve(host: str, family: int) -> list[str]:
    """Resolve ``host`` with the system resolver; IP literals are returned as is."""
    literal = _literal(host)
    if literal is not None:
        return literal
    infos = socket.getaddrinfo(host, None, family=family, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)]


def reject_numeric_remote(remote_addr: str) -> None:
    """Refuse a bare number as a remote address: it is an enclave CID passed by mistake.

    ``vsock-proxy 8080 19 8080`` failed with "DNS lookup failed" (vsock-proxy #716).

    Raises:
        ProxyConfigError: ``remote_addr`` is all digits.
    """
    if remote_addr.isdigit():
        raise ProxyConfigError(
            f"remote address {remote_addr!r} is a bare number, which looks like an enclave "
            f"CID; to reach an enclave use an upstream of the form vsock:{remote_addr}:PORT"
        )


@dataclass(frozen=True)
class AllowlistEntry:
    """One ``{address, port}`` entry."""

    address: str
    port: int


@dataclass(frozen=True)
class AllowlistMatch:
    """Why a remote address was allowed: the entry, and whether by name or by resolved IP."""

    entry: AllowlistEntry
    by: Literal["address", "resolved-ip"]
    ip: str | None = None


@dataclass(frozen=True)
class Allowlist:
    """A parsed allowlist. Build it with :meth:`from_yaml` or :meth:`load`."""

    entries: tuple[AllowlistEntry, ...]

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "<allowlist>") -> Allowlist:
        """Parse vsock-proxy's YAML format.

        Raises:
            ProxyConfigError: not YAML, or not ``allowlist: [{address: str, port: int}]``.
        """
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ProxyConfigError(f"{source}: not valid YAML: {exc}") from exc
        if not isinstance(document, dict) or "allowlist" not in document:
            raise ProxyConfigError(f"{source}: expected a mapping with an 'allowlist' key")
        items = document["allowlist"]
        if items is None:
            items = []
        if not isinstance(items, list):
            raise ProxyConfigError(f"{source}: 'allowlist' must be a list")
        entries = []
        for index, item in enumerate(items):
            where = f"{source}: allowlist[{index}]"
            if not isinstance(item, dict):
                raise ProxyConfigError(f"{where} must be a mapping {{address, port}}")
            address, port = item.get("address"), item.get("port")
            if not isinstance(address, str) or not address:
                raise ProxyConfigError(f"{where}.address must be a non-empty string")
            # bool is an int subclass; `port: yes` is a YAML mistake, not port 1.
            if not isinstance(port, int) or isinstance(port, bool) or not 0 < port <= 0xFFFF:
                raise ProxyConfigError(f"{where}.port must be an integer in 1..65535")
            entries.append(AllowlistEntry(address, port))
        return cls(tuple(entries))

    @classmethod
    def load(cls, path: str | Path) -> Allowlist:
        """Read and parse an allowlist file.

        Raises:
            ProxyConfigError: the file cannot be read or is malformed.
        """
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ProxyConfigError(
                f"cannot read allowlist {path}: {exc.strerror or exc} (pass --config FILE, "
                "or --unsafe-skip-allowlist to run without one)"
            ) from exc
        return cls.from_yaml(text, source=str(path))

    def check(
        self,
        remote_addr: str,
        remote_port: int,
        *,
        family: int = socket.AF_UNSPEC,
        resolve: Resolve = system_resolve,
    ) -> AllowlistMatch:
        """Check a remote address and port the way vsock-proxy does.

        Args:
            remote_addr: the upstream host name or IP literal.
            remote_port: the upstream port.
            family: ``AF_UNSPEC``, or ``AF_INET``/``AF_INET6`` for ``-4``/``-6``.
            resolve: name resolution, a parameter so tests need no DNS; IP literals
                never go through it.

        Returns:
            The match that allowed it.

        Raises:
            ProxyConfigError: ``remote_addr`` is a bare number (an enclave CID by mistake).
            AllowlistError: no entry allows it (message starts with vsock-proxy's wording).
        """
        reject_numeric_remote(remote_addr)
        candidates = [entry for entry in self.entries if entry.port == remote_port]
        for entry in candidates:
            if entry.address == remote_addr:
                return AllowlistMatch(entry, "address")
        remote_ips: set[str] = set()
        if candidates:
            try:
                remote_ips = set(_literal(remote_addr) or resolve(remote_addr, family))
            except OSError as exc:
                raise AllowlistError(
                    f"{NOT_ALLOWED}: {remote_addr}:{remote_port} (it does not resolve: {exc})"
                ) from exc
        for entry in candidates:
            try:
                entry_ips = set(_literal(entry.address) or resolve(entry.address, family))
            except OSError as exc:
                _log.debug("allowlist entry %s does not resolve: %s", entry.address, exc)
                continue
            common = sorted(entry_ips & remote_ips)
            if common:
                return AllowlistMatch(entry, "resolved-ip", common[0])
        raise AllowlistError(f"{NOT_ALLOWED}: {remote_addr}:{remote_port}")
