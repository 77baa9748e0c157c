"""``enclave-kms proxy``: the relay CLI (vsock-proxy compatible) and the credentials hand-off.

Usage::

    # vsock-proxy's form: listen on vsock (CID 3, 8000), relay to kms...:443, allowlist checked
    enclave-kms proxy [-4|-6] [-w N] [--config FILE] 8000 kms.us-east-1.amazonaws.com 443

    # several routes in one process; inbound is a route whose listener is tcp
    enclave-kms proxy --config allow.yaml \\
        --route vsock:3:8000=tcp:kms.us-east-1.amazonaws.com:443 \\
        --route tcp:0.0.0.0:8443=vsock:16:8443

    # hand temporary credentials (boto3 default chain: env, files, IMDS) to an enclave
    enclave-kms proxy send-credentials --to vsock:16:9000 [--region R] [--profile P]

    # inside the enclave: wait for them and print shell exports (or JSON)
    eval "$(enclave-kms proxy receive-credentials --listen vsock:any:9000)"

The allowlist (vsock-proxy's YAML, default ``/etc/nitro_enclaves/vsock-proxy.yaml``) governs
every route whose upstream is tcp; vsock and unix upstreams stay on the host. It is skipped
only with ``--unsafe-skip-allowlist``, which warns. ``-w/--num_workers`` is accepted for
compatibility but does not cap concurrency (there are no worker threads): ``--max-connections``
does. Exit codes: 0 after a clean shutdown, 1 on an error, 2 on a usage error. Credentials are
never taken from the command line (they would show in ``ps``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import signal
import socket
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any, cast

from .allowlist import DEFAULT_CONFIG_PATH, Allowlist, reject_numeric_remote
from .endpoints import TcpEndpoint, VsockEndpoint
from .errors import ProxyConfigError, ProxyError
from .handoff import Credentials, receive_credentials, send_credentials
from .relay import Proxy, RelaySettings, Route

__all__ = ["PARENT_CID", "build_parser", "main", "register"]

#: vsock-proxy binds the parent's CID (3), not VMADDR_CID_ANY.
PARENT_CID = 3
_log = logging.getLogger("enclave_kms.proxy")


class _UsageError(Exception):
    """A usage error found after argparse (exit code 2)."""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _port(maximum: int) -> Any:
    def parse(text: str) -> int:
        value = int(text)
        if not 0 < value <= maximum:
            raise argparse.ArgumentTypeError(f"port must be in 1..{maximum}, got {value}")
        return value

    return parse


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def build_parser(prog: str = "enclave-kms proxy") -> argparse.ArgumentParser:
    """The relay's argument parser (vsock-proxy's flags plus ours)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Relay byte streams between vsock, tcp and unix endpoints (a better "
        "vsock-proxy). Subcommands: send-credentials, receive-credentials.",
    )
    family = parser.add_mutually_exclusive_group()
    family.add_argument("-4", "--ipv4", action="store_true", help="use IPv4 upstreams only")
    family.add_argument("-6", "--ipv6", action="store_true", help="use IPv6 upstreams only")
    parser.add_argument(
        "-w", "--num_workers", type=_positive_int, default=4, metavar="N",
        help="accepted for vsock-proxy compatibility; does not cap concurrency "
        "(there are no worker threads), --max-connections does",
    )  # fmt: skip
    parser.add_argument(
        "--config", metavar="FILE",
        help=f"allowlist YAML for tcp upstreams (default {DEFAULT_CONFIG_PATH})",
    )  # fmt: skip
    parser.add_argument(
        "--unsafe-skip-allowlist", action="store_true",
        help="UNSAFE: relay to any tcp upstream without checking the allowlist",
    )  # fmt: skip
    parser.add_argument(
        "--route", action="append", default=[], metavar="LISTEN=UPSTREAM",
        help="a route, e.g. vsock:3:8000=tcp:kms.eu-west-1.amazonaws.com:443 (repeatable)",
    )  # fmt: skip
    parser.add_argument("--max-connections", type=_positive_int, default=1024)
    parser.add_argument("--connect-timeout", type=_seconds, default=5.0, metavar="S")
    parser.add_argument(
        "--idle-timeout", type=_seconds, default=300.0, metavar="S", help="0 disables"
    )
    parser.add_argument("--drain-timeout", type=_seconds, default=10.0, metavar="S")
    parser.add_argument(
        "--dns-ttl", type=_seconds, default=30.0, metavar="S",
        help="reuse a resolved upstream name this long (getaddrinfo hides the record TTL)",
    )  # fmt: skip
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument(
        "--event-loop", default="asyncio", choices=["asyncio", "uvloop"],
        help="uvloop (if installed) relays TCP faster; vsock is tested with asyncio only",
    )  # fmt: skip
    parser.add_argument("local_port", nargs="?", type=_port(0xFFFFFFFF), help="vsock port")
    parser.add_argument("remote_addr", nargs="?", help="upstream host name or IP")
    parser.add_argument("remote_port", nargs="?", type=_port(0xFFFF), help="upstream port")
    return parser


def _routes(args: argparse.Namespace) -> list[Route]:
    routes = [Route.parse(spec) for spec in args.route]
    positional = (args.local_port, args.remote_addr, args.remote_port)
    if any(value is not None for value in positional):
        if any(value is None for value in positional):
            raise _UsageError("the positional form needs <local_port> <remote_addr> <remote_port>")
        reject_numeric_remote(args.remote_addr)
        routes.append(
            Route(
                VsockEndpoint(PARENT_CID, args.local_port),
                TcpEndpoint(args.remote_addr, args.remote_port),
            )
        )
    if not routes:
        raise _UsageError("give <local_port> <remote_addr> <remote_port> or --route")
    return routes


def _check_allowlist(args: argparse.Namespace, routes: list[Route], family: int) -> None:
    tcp_routes = [route for route in routes if isinstance(route.upstream, TcpEndpoint)]
    if args.unsafe_skip_allowlist:
        message = "UNSAFE: --unsafe-skip-allowlist given; tcp upstreams are not checked"
        warnings.warn(message, stacklevel=2)
        _log.warning(message)
        return
    if not tcp_routes:
        return
    allowlist = Allowlist.load(args.config or DEFAULT_CONFIG_PATH)
    for route in tcp_routes:
        upstream = route.upstream
        assert isinstance(upstream, TcpEndpoint)  # noqa: S101 - filtered above
        match = allowlist.check(upstream.host, upstream.port, family=family)
        _log.info("allowed route=%s by=%s entry=%s", route, match.by, match.entry.address)


async def _serve(proxy: Proxy) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    await proxy.serve(stop)


def _run_relay(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    routes = _routes(args)
    family = socket.AF_INET if args.ipv4 else socket.AF_INET6 if args.ipv6 else socket.AF_UNSPEC
    settings = RelaySettings(
        max_connections=args.max_connections,
        connect_timeout=args.connect_timeout,
        idle_timeout=args.idle_timeout or None,
        drain_timeout=args.drain_timeout,
        dns_ttl=args.dns_ttl,
        family=family,
    )
    _check_allowlist(args, routes, family)
    with asyncio.Runner(loop_factory=_loop_factory(args.event_loop)) as runner:
        runner.run(_serve(Proxy(routes, settings)))
    return 0


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if name == "asyncio":
        return None
    try:
        # Optional and not a declared dependency: imported by name so type checking does not
        # need it installed.
        uvloop = importlib.import_module("uvloop")
    except ImportError as exc:
        raise ProxyConfigError("--event-loop uvloop: uvloop is not installed") from exc
    return cast(Callable[[], asyncio.AbstractEventLoop], uvloop.new_event_loop)


def _run_send(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="enclave-kms proxy send-credentials",
        description="Send temporary AWS credentials from boto3's default chain (environment, "
        "config files, instance metadata) to an enclave, as kmstool-instance does.",
    )
    parser.add_argument("--to", required=True, metavar="ENDPOINT", help="e.g. vsock:16:9000")
    parser.add_argument("--region", help="region sent with the credentials")
    parser.add_argument("--profile", help="boto3 profile to read credentials from")
    parser.add_argument("--timeout", type=_seconds, default=10.0, metavar="S")
    args = parser.parse_args(argv)
    credentials = Credentials.from_boto3(region=args.region, profile=args.profile)
    send_credentials(args.to, credentials, timeout=args.timeout or 10.0)
    print(f"credentials sent to {args.to}", file=sys.stderr)
    return 0


def _run_receive(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="enclave-kms proxy receive-credentials",
        description="Wait for one SetClient and print the credentials for the calling process "
        "(stdout carries secrets by design; never redirect it to a log).",
    )
    parser.add_argument("--listen", required=True, metavar="ENDPOINT", help="vsock:any:9000")
    parser.add_argument("--format", choices=["env", "json"], default="env")
    parser.add_argument("--timeout", type=_seconds, default=None, metavar="S")
    args = parser.parse_args(argv)
    env = receive_credentials(args.listen, timeout=args.timeout).environment()
    if args.format == "json":
        print(json.dumps(env))
    else:
        for name, value in env.items():
            print(f"export {name}={_shell_quote(value)}")
    return 0


def _shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: the relay, or the ``send-credentials`` / ``receive-credentials`` commands.

    Returns:
        0 on success, 1 on an error (a one-line message on stderr), 2 on a usage error.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = arguments[0] if arguments else ""
    runners = {"send-credentials": _run_send, "receive-credentials": _run_receive}
    try:
        if command in runners:
            return runners[command](arguments[1:])
        return _run_relay(arguments)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else 2
    except _UsageError as exc:
        print(f"enclave-kms proxy: usage error: {exc}", file=sys.stderr)
        return 2
    except ProxyError as exc:
        print(f"enclave-kms proxy: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``proxy`` subcommand to the project CLI's ``add_subparsers()`` object.

    The subcommand takes the rest of the command line verbatim (its own flags, positionals and
    sub-commands are parsed by :func:`main`), so vsock-proxy's flag-first form keeps working.
    The parsed namespace gets ``handler(args) -> int``.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "proxy",
        help="relay vsock/tcp/unix streams (vsock-proxy compatible); hand off credentials",
        add_help=False,
        prefix_chars="\0",  # no option prefixes here: every token goes to main()
    )
    parser.add_argument("proxy_argv", nargs="*")
    parser.set_defaults(handler=lambda args: main(args.proxy_argv))
    return parser
