"""Sessions, figures, errors, file mounts and backend selection (on bwrap, plus the opt-in)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sandbox_fixtures import bwrap, make_manager

from mltrainer.sandbox.manager import SandboxManager
from mltrainer.state.errors import InvalidInput, NotFound, PermissionDenied, SandboxUnavailable

__all__ = ["bwrap"]


def test_fresh_call_runs_and_reports(bwrap: SandboxManager) -> None:
    result, images = bwrap.run("import sys\nprint('hi')\nprint('warn', file=sys.stderr)\n6 * 7")
    assert (result.status, result.exit_code) == ("ok", 0)
    assert result.stdout == "hi\n42\n" and result.stderr == "warn\n"
    assert result.backend == "bwrap" and result.isolated and result.session is None
    assert "bubblewrap" in result.backend_reason
    assert images == []


def test_user_errors_are_data(bwrap: SandboxManager) -> None:
    result, _ = bwrap.run("def f():\n    raise ValueError('bad value')\nf()")
    assert result.status == "error" and result.exit_code == 1
    assert "ValueError: bad value" in result.stderr and "runner.py" not in result.stderr
    syntax, _ = bwrap.run("def (")
    assert syntax.status == "error" and "SyntaxError" in syntax.stderr
    exited, _ = bwrap.run("import sys\nsys.exit(3)")
    assert (exited.status, exited.exit_code) == ("error", 3)


def test_session_keeps_state_until_reset(bwrap: SandboxManager) -> None:
    bwrap.run("import numpy as np\nx = np.arange(5)", session="nb")
    result, _ = bwrap.run("int(x.sum())", session="nb")
    assert result.stdout.strip() == "10" and result.session == "nb"
    info = bwrap.info()
    assert [s.name for s in info.sessions] == ["nb"] and info.sessions[0].calls == 2
    bwrap.reset_session("nb")
    result, _ = bwrap.run("x", session="nb")
    assert result.status == "error" and "NameError" in result.stderr
    bwrap.close_session("nb")
    with pytest.raises(NotFound):
        bwrap.close_session("nb")
    assert bwrap.info().sessions == []


def test_session_survives_errors_and_stdin_reads(bwrap: SandboxManager) -> None:
    bwrap.run("counter = 1", session="s")
    error, _ = bwrap.run("input()", session="s")
    assert error.status == "error" and "EOFError" in error.stderr
    result, _ = bwrap.run("counter + 1", session="s")
    assert result.stdout.strip() == "2"


def test_timeout_in_session_loses_it_and_the_next_call_starts_fresh(bwrap: SandboxManager) -> None:
    bwrap.run("y = 1", session="t")
    result, _ = bwrap.run("while True: pass", session="t", timeout_s=1)
    assert result.status == "timeout" and result.session_lost
    again, _ = bwrap.run("print('y' in globals())", session="t")
    assert again.stdout.strip() == "False"


def test_figures_come_back_as_png(bwrap: SandboxManager) -> None:
    code = (
        "import matplotlib.pyplot as plt\n"
        "for i in range(6):\n    plt.figure(); plt.plot([1, i, 3])\n"
        "open('table.csv', 'w').write('a,b\\n1,2\\n')"
    )
    result, images = bwrap.run(code)
    assert result.status == "ok", result.stderr
    assert len(images) == bwrap.limits.max_images
    assert all(blob.startswith(b"\x89PNG") for blob in images)
    assert len(result.images) == 6 and sum(i.attached for i in result.images) == 4
    assert result.files_written == ["table.csv"]


def test_files_are_mounted_read_only(bwrap: SandboxManager, tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n3,4\n")
    code = (
        f"import pandas as pd\nprint(pd.read_csv({str(data)!r}).a.sum())\nopen({str(data)!r}, 'a')"
    )
    result, _ = bwrap.run(code, files=[str(data)])
    assert result.stdout.strip() == "4"
    assert result.status == "error" and "Read-only file system" in result.stderr
    assert data.read_text() == "a,b\n1,2\n3,4\n"


def test_files_outside_roots_or_holding_state_are_refused(bwrap: SandboxManager) -> None:
    with pytest.raises(PermissionDenied, match="outside"):
        bwrap.run("print(1)", files=["/etc/hostname"])
    with pytest.raises(PermissionDenied, match="state or credentials"):
        bwrap.run("print(1)", files=[str(bwrap.settings.home)])
    with pytest.raises(NotFound):
        bwrap.run("print(1)", files=["missing.csv"])


def test_session_files_are_fixed_at_start(bwrap: SandboxManager, tmp_path: Path) -> None:
    data = tmp_path / "later.csv"
    data.write_text("x\n1\n")
    bwrap.run("a = 1", session="f")
    with pytest.raises(InvalidInput, match="reset_session"):
        bwrap.run("print(1)", session="f", files=[str(data)])


def test_bad_session_names_and_timeouts(bwrap: SandboxManager) -> None:
    with pytest.raises(InvalidInput):
        bwrap.run("1", session="../escape")
    with pytest.raises(InvalidInput):
        bwrap.run("1", timeout_s=0)


def test_idle_sessions_are_reaped(home: Path) -> None:
    from sandbox_fixtures import require

    require("bwrap")
    manager = make_manager(home, "bwrap", idle_timeout_s=0.3)
    try:
        manager.run("a = 1", session="idle")
        deadline = time.monotonic() + 10
        while manager.info().sessions and time.monotonic() < deadline:
            time.sleep(0.1)
        assert manager.info().sessions == []
    finally:
        manager.close()


def test_process_opt_in_says_it_is_unisolated(home: Path) -> None:
    manager = make_manager(home, "process")
    try:
        assert not manager.info().isolated
        result, _ = manager.run("print(2 + 2)")
        assert result.stdout == "4\n" and result.backend == "process" and not result.isolated
    finally:
        manager.close()


def test_no_backend_refuses_with_how_to_get_one(home: Path) -> None:
    from mltrainer.state.settings import Settings

    settings = Settings(home=home, sandbox="docker", sandbox_image="mltrainer-no-such-image:0")
    manager = SandboxManager(settings)
    try:
        assert manager.info().backend is None
        with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
            manager.run("print(1)")
    finally:
        manager.close()


def test_sessionless_calls_and_sessions_are_jobs_with_events(bwrap: SandboxManager) -> None:
    bwrap.run("print('logged line')")
    store = bwrap.store
    assert store is not None
    jobs = store.list_jobs()
    assert jobs[0].kind == "sandbox" and jobs[0].status == "succeeded"
    assert any("logged line" in event.message for event in store.events(jobs[0].id))
    bwrap.run("1/0")
    failed = store.events(store.list_jobs()[0].id)
    assert any("ZeroDivisionError" in event.message for event in failed)
    bwrap.run("a = 1", session="job")
    # Never left queued/running: the job supervisor would take it for a dead worker's job.
    assert not store.jobs_in("queued", "running")
    bwrap.close_session("job")
    session_job = next(job for job in store.list_jobs() if job.request.get("session") == "job")
    assert session_job.result == {"open": False, "ended": "closed"}


def test_closing_a_busy_session_ends_its_call(bwrap: SandboxManager) -> None:
    import threading

    bwrap.run("import time", session="busy")
    results = []
    worker = threading.Thread(
        target=lambda: results.append(bwrap.run("time.sleep(60)", session="busy", timeout_s=60))
    )
    worker.start()
    time.sleep(0.5)
    started = time.monotonic()
    bwrap.close_session("busy")
    worker.join(timeout=15)
    assert not worker.is_alive() and time.monotonic() - started < 15
    result, _ = results[0]
    assert result.status == "killed" and result.session_lost
    assert "closed or reset" in (result.reason or "")


def test_network_opt_in_when_the_person_enabled_it(home: Path) -> None:
    import socket

    from sandbox_fixtures import require, shared_mpl_cache

    from mltrainer.state.settings import Settings

    require("bwrap")
    settings = Settings(home=home, sandbox="bwrap", sandbox_allow_network=True)
    manager = SandboxManager(settings, mpl_cache=shared_mpl_cache())
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=5)\nprint('ok')"
        result, _ = manager.run(code, network=True, session="net")
        assert result.stdout == "ok\n", result.stderr
        with pytest.raises(InvalidInput, match="network=True"):
            manager.run("1", session="net")
    finally:
        listener.close()
        manager.close()
