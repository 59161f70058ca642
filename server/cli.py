"""Command-line entry points.

``mltrainer-mcp``: the MCP server over stdio (what MCP clients start).
``mltrainer``: the human CLI — ``demo``, ``serve`` (stdio or streamable HTTP), ``secrets``.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys


def stdio_main() -> None:
    """Serve MCP over stdio. Nothing but protocol messages may reach stdout."""
    import gc

    # Start-up builds many objects that live as long as the server (modules, schemas): no
    # collections while it runs (they cost start-up time), and none of them scanned again.
    gc.disable()
    from mltrainer.server.app import create_server

    server = create_server()
    gc.freeze()
    gc.enable()
    server.run("stdio")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(args: argparse.Namespace) -> int:
    if not args.http:
        stdio_main()
        return 0
    token = args.token or os.environ.get("MLTRAINER_HTTP_TOKEN")
    if not _is_loopback(args.host) and not (args.allow_remote and token):
        print(
            f"Refusing to listen on {args.host}: it is not a loopback address. To serve other "
            "machines, pass --allow-remote and a bearer token (--token or MLTRAINER_HTTP_TOKEN).",
            file=sys.stderr,
        )
        return 2
    from mltrainer.server.http import run_http

    run_http(args.host, args.port, token)
    return 0


def demo(args: argparse.Namespace) -> int:
    from mltrainer.server.demo import run_demo

    return run_demo(time_budget_s=args.time_budget)


def secrets_cmd(args: argparse.Namespace) -> int:
    import getpass

    from mltrainer.state.errors import MLTrainerError
    from mltrainer.state.secrets import SecretVault
    from mltrainer.state.settings import Settings

    settings = Settings()
    vault = SecretVault(settings.secrets_path)
    try:
        if args.action == "set":
            value = getpass.getpass(f"Value for {args.name} (not echoed): ")
            vault.set(args.name, value)
            print(f"Stored {args.name} in {settings.secrets_path}; use it as secret://{args.name}.")
        elif args.action == "delete":
            found = vault.delete(args.name)
            print(f"Deleted {args.name}." if found else f"{args.name} was not stored.")
        else:
            for info in vault.infos():
                print(f"{info.reference:<24} {info.source:<6} {'set' if info.valid else 'not set'}")
    except MLTrainerError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mltrainer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p_demo = sub.add_parser("demo", help="Train and predict through the MCP server, offline.")
    p_demo.add_argument(
        "--time-budget", type=int, default=20, help="Training seconds (default 20)."
    )
    p_demo.set_defaults(func=demo)

    p_serve = sub.add_parser("serve", help="Run the MCP server (stdio by default).")
    p_serve.add_argument(
        "--http", action="store_true", help="Serve streamable HTTP instead of stdio."
    )
    p_serve.add_argument("--host", default="127.0.0.1")
    p_serve.add_argument("--port", type=int, default=8765)
    p_serve.add_argument("--allow-remote", action="store_true", help="Allow a non-loopback --host.")
    p_serve.add_argument("--token", default=None, help="Bearer token required from HTTP clients.")
    p_serve.set_defaults(func=serve)

    p_sec = sub.add_parser("secrets", help="Manage stored secrets (values are typed, never shown).")
    p_sec.add_argument("action", choices=["set", "delete", "list"])
    p_sec.add_argument("name", nargs="?", default=None)
    p_sec.set_defaults(func=secrets_cmd)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "action", None) in ("set", "delete") and not args.name:
        parser.error(f"'secrets {args.action}' needs a NAME, e.g. HF_TOKEN")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
