"""``mltrainer doctor``: what a first run needs, checked on this machine, each with how to fix it.

Python and package versions, the sandbox backend and why, each credential (present, and valid
for the Hugging Face Hub and Kaggle unless --offline), the state directory (private, writable,
free disk), and whether Claude Desktop's, Cursor's or VS Code's configuration starts this
install. It reads the state directory and client configurations directly (it must work when
the server cannot start); it never prints a secret's value.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from mltrainer.state.settings import Settings

Level = Literal["ok", "warning", "problem"]
PACKAGES = ("mltrainer-mcp", "mcp", "pydantic", "scikit-learn", "xgboost", "pandas", "pyarrow")
MIN_FREE_BYTES = 2 * 1024**3
SERVER_COMMAND = "mltrainer-mcp"
MARK = {"ok": "[green]ok[/]", "warning": "[yellow]warning[/]", "problem": "[red]problem[/]"}


class Check(BaseModel):
    area: str
    name: str
    level: Level
    detail: str
    fix: str | None = None


class Report(BaseModel):
    checks: list[Check]
    problems: int
    warnings: int


def python_and_packages() -> Iterator[Check]:
    version = ".".join(map(str, sys.version_info[:3]))
    # The package needs 3.11 (requires-python): an older interpreter could not have installed it.
    yield Check(area="python", name="Python", level="ok", detail=f"{version} ({sys.executable})")
    for package in PACKAGES:
        try:
            found = metadata.version(package)
        except metadata.PackageNotFoundError:
            yield Check(
                area="python",
                name=package,
                level="problem",
                detail="not installed",
                fix=f"pip install --upgrade mltrainer-mcp (it brings {package}).",
            )
            continue
        yield Check(area="python", name=package, level="ok", detail=found)


def sandbox(settings: Settings) -> Iterator[Check]:
    from mltrainer.sandbox.selection import choose_backend, how_to_get_one

    choice = choose_backend(settings)
    if choice.backend is None:
        yield Check(
            area="sandbox",
            name="backend",
            level="warning",
            detail=f"run_code cannot run: {choice.reason}",
            fix=how_to_get_one(settings),
        )
    elif settings.sandbox == "process":
        yield Check(
            area="sandbox",
            name="backend",
            level="warning",
            detail=choice.reason,
            fix="Install bubblewrap or Docker and unset MLTRAINER_SANDBOX to isolate code.",
        )
    else:
        yield Check(area="sandbox", name="backend", level="ok", detail=choice.reason)


def credentials(settings: Settings, online: bool) -> Iterator[Check]:
    from mltrainer.state.secrets import SecretVault

    vault = SecretVault.for_settings(settings)
    for info in vault.infos():
        if info.source == "unset":
            yield Check(
                area="credentials",
                name=info.name,
                level="ok" if info.declared_by == "built-in" else "warning",
                detail="not set (only needed for what uses it)",
                fix=f"mltrainer secrets set {info.name}",
            )
            continue
        if not info.valid:
            yield Check(
                area="credentials",
                name=info.name,
                level="problem",
                detail=info.problem or "set but unusable",
                fix=f"mltrainer secrets set {info.name}",
            )
            continue
        yield _checked(info.name, info.source, vault, settings, online)


def _checked(name: str, source: str, vault: Any, settings: Settings, online: bool) -> Check:
    where = "the environment" if source == "env" else str(settings.secrets_path)
    if not online or name not in ("HF_TOKEN", "KAGGLE"):
        return Check(area="credentials", name=name, level="ok", detail=f"set, from {where}")
    from mltrainer.tools.deploy.credentials import check_secret

    check = check_secret(name, vault, settings)
    if check is None or check.status == "valid":
        detail = check.message if check else f"set, from {where}"
        return Check(area="credentials", name=name, level="ok", detail=detail)
    return Check(
        area="credentials",
        name=name,
        level="problem" if check.status == "invalid" else "warning",
        detail=check.message,
        fix=f"mltrainer secrets set {name}" if check.status == "invalid" else None,
    )


def state_dir(settings: Settings) -> Iterator[Check]:
    home = settings.home
    try:
        settings.ensure_dirs()
    except OSError as exc:
        yield Check(
            area="state",
            name="directory",
            level="problem",
            detail=f"{home}: {exc}",
            fix="Point MLTRAINER_HOME at a folder you can write to.",
        )
        return
    mode = stat.S_IMODE(home.stat().st_mode)
    writable = os.access(home, os.W_OK)
    if not writable:
        yield Check(
            area="state",
            name="directory",
            level="problem",
            detail=f"{home} is read-only",
            fix="Point MLTRAINER_HOME at a folder you can write to.",
        )
    elif os.name == "posix" and mode & 0o077:
        yield Check(
            area="state",
            name="directory",
            level="warning",
            detail=f"{home} is readable by others (mode {mode:o})",
            fix=f"chmod 700 {home} (the server also tightens it when it starts)",
        )
    else:
        yield Check(area="state", name="directory", level="ok", detail=f"{home} (private)")
    free = shutil.disk_usage(home).free
    level: Level = "ok" if free >= MIN_FREE_BYTES else "warning"
    yield Check(
        area="state",
        name="free disk",
        level=level,
        detail=f"{free / 1024**3:.1f} GiB free",
        fix=None if level == "ok" else "Free some space: datasets and models are kept there.",
    )


def client_config_paths(platform: str = sys.platform, home: Path | None = None) -> dict[str, Path]:
    """The known places of each client's MCP configuration on this operating system."""
    home = home or Path.home()
    if platform == "darwin":
        support = home / "Library" / "Application Support"
    elif platform.startswith("win"):
        support = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
    else:
        support = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    return {
        "Claude Desktop": support / "Claude" / "claude_desktop_config.json",
        "Cursor": home / ".cursor" / "mcp.json",
        "VS Code (user)": support / "Code" / "User" / "mcp.json",
        "VS Code (this folder)": Path.cwd() / ".vscode" / "mcp.json",
    }


def this_install() -> Path:
    """The mltrainer-mcp command that belongs to this interpreter's install."""
    script = "Scripts/mltrainer-mcp.exe" if os.name == "nt" else "bin/mltrainer-mcp"
    return Path(sys.prefix) / script


def client_configs(paths: dict[str, Path] | None = None) -> Iterator[Check]:
    mine = this_install()
    found_any = False
    for client, path in (paths or client_config_paths()).items():
        if not path.is_file():
            continue
        found_any = True
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            yield Check(
                area="clients",
                name=client,
                level="warning",
                detail=f"{path}: {exc}",
                fix="Fix the file's JSON (see mcp.json.example).",
            )
            continue
        servers = config.get("mcpServers") or config.get("servers") or {}
        commands = [
            " ".join([str(s.get("command", "")), *map(str, s.get("args") or [])])
            for s in servers.values()
            if isinstance(s, dict)
        ]
        ours = [c for c in commands if SERVER_COMMAND in c or "mltrainer" in c]
        if any(str(mine) in c for c in ours) or any(_same_program(c, mine) for c in ours):
            yield Check(area="clients", name=client, level="ok", detail=f"{path} starts {mine}")
        elif ours:
            yield Check(
                area="clients",
                name=client,
                level="warning",
                detail=f"{path} starts another install: {ours[0]}",
                fix=f'Set "command" to "{mine}" (see mcp.json.example).',
            )
        else:
            yield Check(
                area="clients",
                name=client,
                level="warning",
                detail=f"{path} has no mltrainer server",
                fix=f'Add a server with "command": "{mine}" (see mcp.json.example).',
            )
    if not found_any:
        yield Check(
            area="clients",
            name="MCP clients",
            level="warning",
            detail="no Claude Desktop, Cursor or VS Code configuration found",
            fix=f'Add a server with "command": "{mine}" to your client (see mcp.json.example).',
        )


def _same_program(command: str, mine: Path) -> bool:
    resolved = shutil.which(command.split(" ")[0])
    return resolved is not None and Path(resolved).resolve() == mine.resolve()


def report(settings: Settings, online: bool) -> Report:
    checks = [
        *python_and_packages(),
        *sandbox(settings),
        *credentials(settings, online),
        *state_dir(settings),
        *client_configs(),
    ]
    return Report(
        checks=checks,
        problems=sum(c.level == "problem" for c in checks),
        warnings=sum(c.level == "warning" for c in checks),
    )


def doctor(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    found = report(Settings(), online=not args.offline)
    console = Console()
    if args.json:
        print(found.model_dump_json(indent=2))  # plain, for scripts
    else:
        table = Table(title="mltrainer doctor")
        for column in ("area", "check", "", "detail", "how to fix"):
            table.add_column(column, overflow="fold")
        for check in found.checks:
            table.add_row(check.area, check.name, MARK[check.level], check.detail, check.fix or "")
        console.print(table)
        console.print(f"{found.problems} problem(s), {found.warnings} warning(s).")
    return 1 if found.problems else 0


def add_command(sub: Any) -> None:
    p = sub.add_parser("doctor", help="Check what a first run needs, and how to fix each.")
    p.add_argument("--json", action="store_true", help="Print the checks as JSON on stdout.")
    p.add_argument(
        "--offline", action="store_true", help="Do not check credentials with their services."
    )
    p.set_defaults(func=doctor)
