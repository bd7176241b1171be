"""The ``suno-mcp`` command.

- ``suno-mcp``: serve MCP over stdio (the same as ``suno-mcp serve``).
- ``suno-mcp serve [--transport stdio|http] [--host H] [--port P] [--sandbox [--sandbox-profile NAME]]``
- ``suno-mcp sandbox [--host H] [--port P] [--speed X] [--faults SPEC] [--seed N] [--profile NAME]
  [--rate-limit RPS [--rate-burst N] [--rate-limit-per-key]]``
- ``suno-mcp demo "PROMPT" [--out DIR]``: make a song end to end and save it.

Over stdio, stdout carries the protocol: everything else goes to stderr.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from suno_mcp import __version__
from suno_mcp.domain.errors import ConfigurationError

if TYPE_CHECKING:
    import argparse


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request at INFO; that is noise for a server's users.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("httpcore").setLevel(max(logging.WARNING, root.level))


def _parser() -> argparse.ArgumentParser:
    # Imported here: a client starts the server with no arguments (see main), which parses nothing.
    import argparse

    parser = argparse.ArgumentParser(
        prog="suno-mcp",
        description="MCP server that makes music with Suno through gptproto. With no command: serve over stdio.",
    )
    parser.add_argument("--version", action="version", version=f"suno-mcp {__version__}")
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser("serve", help="serve MCP (stdio by default, or streamable HTTP)")
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    serve.add_argument(
        "--sandbox", action="store_true", help="use the built-in offline sandbox instead of the real API"
    )
    serve.add_argument("--sandbox-speed", type=float, default=None, help="sandbox time factor (default 10)")
    serve.add_argument("--sandbox-faults", default="", help="sandbox fault spec, e.g. '429:0.1,500:0.05'")
    serve.add_argument(
        "--sandbox-profile",
        default=None,
        help="sandbox latency profile: steady (default), fast, typical, slow, heavy-tail, bimodal",
    )
    serve.add_argument(
        "--sandbox-rate-limit", type=float, default=None, metavar="RPS", help="sandbox's own rate limit"
    )

    sandbox = sub.add_parser("sandbox", help="run the offline gptproto-compatible Suno sandbox")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8765)
    sandbox.add_argument("--speed", type=float, default=1.0, help="time factor: 100 makes 30 s take 0.3 s")
    sandbox.add_argument("--faults", default="", help="e.g. '429:0.1,500:0.05,slow:0.05,drop:0.02'")
    sandbox.add_argument("--seed", type=int, default=0)
    sandbox.add_argument("--api-key", default=None, help="accept only this key (default: any non-empty key)")
    sandbox.add_argument(
        "--profile",
        default="steady",
        help="latency profile: steady (default: ~30 s / ~120 s), fast, typical, slow, heavy-tail, bimodal",
    )
    sandbox.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        metavar="RPS",
        help="answer 429 past this many API requests per second (default: no limit)",
    )
    sandbox.add_argument(
        "--rate-burst",
        type=int,
        default=None,
        metavar="N",
        help="requests allowed at once (default: 1 s worth)",
    )
    sandbox.add_argument(
        "--rate-limit-per-key", action="store_true", help="one bucket per API key instead of one for all"
    )

    demo = sub.add_parser("demo", help="make a song end to end (sandbox unless GPTPROTO_API_KEY is set)")
    demo.add_argument("prompt", help="what the song is about, e.g. 'a lo-fi song about rain'")
    demo.add_argument("--out", default="suno-output", help="where to save the audio (default ./suno-output)")
    demo.add_argument("--instrumental", action="store_true")
    demo.add_argument("--sandbox", action="store_true", help="use the sandbox even if a key is set")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``suno-mcp`` console script."""
    given = sys.argv[1:] if argv is None else argv
    # No arguments is how an MCP client starts the server, once per conversation: serve over stdio
    # with every option at its default, as parsing would, without building the parser first.
    args = _parser().parse_args(given) if given else None
    try:
        if args is None or (args.command or "serve") == "serve":
            _serve(args)
        elif args.command == "sandbox":
            _sandbox(args)
        elif args.command == "demo":
            from suno_mcp.demo import run_demo

            sys.exit(
                run_demo(
                    args.prompt, out=args.out, instrumental=args.instrumental, force_sandbox=args.sandbox
                )
            )
    except ConfigurationError as err:
        print(f"suno-mcp: {err.message}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


def _serve(args: argparse.Namespace | None) -> None:
    from suno_mcp.server.app import build_server
    from suno_mcp.service.backends import SandboxOptions, sandbox_backend, upstream_backend
    from suno_mcp.settings import load_settings

    settings = load_settings()
    _configure_logging(settings.log_level)
    transport = getattr(args, "transport", "stdio")
    if settings.team_mode and transport != "http":
        raise ConfigurationError(
            "SUNO_MCP_KEYS=per-request (team mode) needs the HTTP transport: each request brings its "
            "caller's own gptproto key as its Authorization header, and stdio has no requests of its own. "
            "Run `suno-mcp serve --transport http`, or unset SUNO_MCP_KEYS and set GPTPROTO_API_KEY "
            "for one person over stdio."
        )
    if args is not None and getattr(args, "sandbox", False):
        speed = args.sandbox_speed or SandboxOptions.speed
        try:
            options = SandboxOptions(
                speed=speed,
                faults=args.sandbox_faults,
                profile=args.sandbox_profile or SandboxOptions.profile,
                rate_limit_rps=args.sandbox_rate_limit,
            )
            # Fail now, not on the first tool call (the backend opens the sandbox lazily).
            options.check()
        except ValueError as err:
            raise ConfigurationError(f"sandbox: {err}") from err
        backend = sandbox_backend(options)
    else:
        backend = upstream_backend
        if not settings.has_key and not settings.team_mode:
            logging.getLogger("suno_mcp").warning(
                "GPTPROTO_API_KEY is not set: tools will explain how to set it (or use --sandbox)"
            )
    server = build_server(settings, backend)
    if args is None or transport == "stdio":
        server.run("stdio")
        return
    from suno_mcp.server.http import serve_http

    serve_http(server, settings, host=args.host, port=args.port)


def _sandbox(args: argparse.Namespace) -> None:
    from suno_mcp.sandbox.runner import serve_forever
    from suno_mcp.sandbox.state import SandboxConfig
    from suno_mcp.server.http import is_loopback

    _configure_logging("INFO")
    if not is_loopback(args.host):
        print(
            f"suno-mcp: warning: the sandbox is listening on {args.host}, reachable from other machines",
            file=sys.stderr,
        )
    try:
        config = SandboxConfig(
            speed=args.speed,
            faults=args.faults,
            seed=args.seed,
            api_key=args.api_key,
            profile=args.profile,
            rate_limit_rps=args.rate_limit,
            rate_burst=args.rate_burst,
            rate_limit_per_key=args.rate_limit_per_key,
        )
    except ValueError as err:
        raise ConfigurationError(f"sandbox: {err}") from err
    serve_forever(config, host=args.host, port=args.port)
