"""Command-line entry points.

``mltrainer-mcp``: the MCP server over stdio (what MCP clients start).
``mltrainer``: the human CLI — ``train``, ``jobs``, ``status``, ``predict``, ``profile``,
``cancel``, ``deploy`` (commands.py: MCP clients of the same server), ``doctor`` (doctor.py),
``demo`` (demo.py), ``serve`` (stdio or streamable HTTP), ``secrets``.

This module stays light: ``mltrainer-mcp`` imports it first, on every start of the server.
"""

from __future__ import annotations

import argparse
import sys


def stdio_main() -> None:
    """Serve MCP over stdio. Nothing but protocol messages may reach stdout."""
    import gc

    # Start-up builds many objects that live as long as the server (modules, schemas): no
    # collections while it runs (they cost start-up time), and none of them scanned again.
    gc.disable()
    from mltrainer.server.app import create_server
    from mltrainer.state.files import private_umask
    from mltrainer.tools.machine import tune_allocator

    private_umask()
    tune_allocator()  # predict and profile read tables in the server: 383 -> 316 MB at 25k rows
    server = create_server()
    gc.freeze()
    gc.enable()
    server.run("stdio")


def serve(args: argparse.Namespace) -> int:
    if not args.http:
        stdio_main()
        return 0
    from mltrainer.server.http import resolve_token, run_http
    from mltrainer.state.destinations import is_loopback
    from mltrainer.state.errors import MLTrainerError
    from mltrainer.state.files import private_umask
    from mltrainer.state.settings import Settings
    from mltrainer.tools.machine import tune_allocator

    if not is_loopback(args.host) and not args.allow_remote:
        print(
            f"Refusing to listen on {args.host}: it is not a loopback address. To serve other "
            "machines, pass --allow-remote; clients then need the bearer token (--token, "
            "MLTRAINER_HTTP_TOKEN, or the one generated in the state directory).",
            file=sys.stderr,
        )
        return 2
    private_umask()
    tune_allocator()
    try:
        token = resolve_token(Settings(), args.token)
    except MLTrainerError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    run_http(args.host, args.port, token)
    return 0


def demo(args: argparse.Namespace) -> int:
    from mltrainer.server.cli.demo import run_demo

    return run_demo(time_budget_s=args.time_budget)


def secrets_cmd(args: argparse.Namespace) -> int:
    from mltrainer.state.errors import MLTrainerError
    from mltrainer.state.secrets import SecretVault
    from mltrainer.state.settings import Settings

    settings = Settings()
    vault = SecretVault.for_settings(settings)
    try:
        if args.action == "set":
            vault.binding(args.name)  # a name that cannot be stored fails before the prompt
            stored = vault.set(args.name, _read_value(args), args.host)
            out = sys.stderr if stored.overridden_by else sys.stdout
            print(f"{stored.message} (in {settings.secrets_path})", file=out)
        elif args.action == "delete":
            found = vault.delete(args.name)
            print(f"Deleted {args.name}." if found else f"{args.name} was not stored.")
        else:
            for info in vault.infos():
                status = "set" if info.valid else info.problem or "not set"
                hosts = ", ".join(info.hosts) or "-"
                print(
                    f"{info.reference:<24} {info.declared_by:<13} {info.source:<6} {hosts}  {status}"
                )
    except MLTrainerError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    return 0


def _read_value(args: argparse.Namespace) -> str:
    if args.stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    return getpass.getpass(f"Value for {args.name} (not echoed): ")


def build_parser() -> argparse.ArgumentParser:
    from mltrainer.server.cli import commands, doctor

    parser = argparse.ArgumentParser(
        prog="mltrainer",
        description="Train machine-learning models through the mltrainer MCP server.",
        epilog="Exit codes: 0 done, 1 the job failed or was cancelled (doctor: a problem), "
        "2 bad input, 3 the server is not available, 130 interrupted.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    commands.add_commands(sub)
    doctor.add_command(sub)

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
    p_serve.add_argument(
        "--token",
        default=None,
        help="Bearer token HTTP clients must send (default: MLTRAINER_HTTP_TOKEN, else one "
        "generated in the state directory). Other local users can see command lines: prefer "
        "the environment variable.",
    )
    p_serve.set_defaults(func=serve)

    p_sec = sub.add_parser("secrets", help="Manage stored secrets (values are typed, never shown).")
    p_sec.add_argument("action", choices=["set", "delete", "list"])
    p_sec.add_argument("name", nargs="?", default=None)
    p_sec.add_argument(
        "--host",
        action="append",
        default=None,
        help="A host the secret may be sent to (repeat for several; '*.example.com' for "
        "subdomains). Not needed for HF_TOKEN, KAGGLE_*, MODAL_* or a URL value.",
    )
    p_sec.add_argument(
        "--stdin", action="store_true", help="Read the value from standard input (one line)."
    )
    p_sec.set_defaults(func=secrets_cmd)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "action", None) in ("set", "delete") and not args.name:
        parser.error(f"'secrets {args.action}' needs a NAME, e.g. HF_TOKEN")
    return int(args.func(args) or 0)
