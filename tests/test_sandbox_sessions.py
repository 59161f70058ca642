"""Sessions, figures, errors, file mounts and backend selection (on bwrap, plus the opt-in)."""

from __future__ import annotations

import os
import shutil
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from sandbox_fixtures import bwrap, make_manager, wait_until

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
    assert "session='nb'" in result.next_step and "close_session" in result.next_step
    info = bwrap.info()
    assert [s.name for s in info.sessions] == ["nb"] and info.sessions[0].calls == 2
    assert "close_session('nb')" in info.sessions[0].next_step
    bwrap.reset_session("nb")
    result, _ = bwrap.run("x", session="nb")
    assert result.status == "error" and "NameError" in result.stderr
    assert result.reason is None  # a reset is not a surprise: no "had stopped" note
    bwrap.close_session("nb")
    with pytest.raises(NotFound):
        bwrap.close_session("nb")
    assert bwrap.info().sessions == []


def test_close_session_after_reset_closes_it_and_deletes_its_workspace(
    bwrap: SandboxManager, tmp_path: Path
) -> None:
    first, _ = bwrap.run("open('kept.txt', 'w').write('x')", session="rc")
    workspace = Path(first.workspace)
    reset = bwrap.reset_session("rc")
    assert not reset.closed and (workspace / "kept.txt").exists()
    assert [s.name for s in bwrap.info().sessions] == ["rc"]
    closed = bwrap.close_session("rc")
    assert closed.closed and not workspace.exists()
    assert bwrap.info().sessions == []


def test_a_reset_session_takes_the_files_of_its_next_call(
    bwrap: SandboxManager, tmp_path: Path
) -> None:
    data = tmp_path / "late.csv"
    data.write_text("a\n7\n")
    bwrap.run("a = 1", session="rf")
    bwrap.reset_session("rf")
    result, _ = bwrap.run(
        f"print(open({str(data)!r}).read().split()[1])", session="rf", files=[str(data)]
    )
    assert result.stdout == "7\n", result.stderr


def test_close_session_deletes_a_workspace_left_by_an_earlier_server(bwrap: SandboxManager) -> None:
    leftover = bwrap.root / "sessions" / "old"
    leftover.mkdir(parents=True)
    (leftover / "data.txt").write_text("x")
    closed = bwrap.close_session("old")
    assert closed.closed and "leftover" in closed.message and not leftover.exists()


def test_a_session_outlives_the_thread_that_started_it(bwrap: SandboxManager) -> None:
    """bwrap's --die-with-parent follows the *thread* that started it: anyio's worker threads
    end after 10 s idle, and each code job has its own."""
    starter = threading.Thread(target=lambda: bwrap.run("kept = 41", session="thread"))
    starter.start()
    starter.join()
    result, _ = bwrap.run("kept + 1", session="thread")
    assert result.stdout == "42\n", result.stderr


def test_a_session_whose_interpreter_died_between_calls_says_so(bwrap: SandboxManager) -> None:
    bwrap.run("z = 1", session="died")
    kernel = bwrap.sessions._sessions["died"].kernel
    assert kernel is not None and kernel.proc is not None
    os.killpg(kernel.proc.pid, signal.SIGKILL)
    kernel.proc.wait(timeout=60)
    result, _ = bwrap.run("print('z' in globals())", session="died")
    assert result.stdout == "False\n"
    assert "had stopped since the last call" in (result.reason or "")
    assert "variables from earlier calls are gone" in (result.reason or "")


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
    assert "larger timeout_s" in result.next_step and "lost its variables" in result.next_step
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
        assert wait_until(lambda: not manager.info().sessions)
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


def test_runs_have_their_own_records_and_are_not_jobs(bwrap: SandboxManager) -> None:
    store = bwrap.store
    assert store is not None
    ok, _ = bwrap.run("print('logged line')")
    failed, _ = bwrap.run("1/0")
    bwrap.run("a = 1", session="rec")
    bwrap.close_session("rec")
    assert store.list_jobs() == []  # list_jobs is for jobs: no run fills it
    runs = {run.id: run for run in store.runs()}
    assert len(runs) == 3 and not store.runs(status="running")
    first = runs[ok.run_id or ""]
    assert (first.status, first.exit_code, first.session) == ("ok", 0, None)
    assert first.stdout_tail == "logged line\n" and first.backend == "bwrap"
    assert first.duration_s is not None and first.finished_at is not None
    assert first.owner_pid == os.getpid()
    second = runs[failed.run_id or ""]
    assert second.status == "error" and "ZeroDivisionError" in second.stderr_tail
    assert "read stderr" in failed.next_step
    listed = bwrap.info().recent_runs
    assert [run.run_id for run in listed][:2] == [r.id for r in store.runs()][:2]
    assert {run.session for run in listed} == {None, "rec"}


def test_closing_a_busy_session_ends_its_call(bwrap: SandboxManager) -> None:
    bwrap.run("import time", session="busy")
    started = bwrap.root / "sessions" / "busy" / "started"
    results = []
    code = "open('started', 'w').close()\ntime.sleep(60)"
    worker = threading.Thread(
        target=lambda: results.append(bwrap.run(code, session="busy", timeout_s=60))
    )
    worker.start()
    assert wait_until(started.exists)
    assert bwrap.info().sessions[0].busy
    bwrap.close_session("busy")
    worker.join(timeout=60)
    assert not worker.is_alive()
    result, _ = results[0]
    assert result.status == "killed" and result.session_lost
    assert "closed or reset" in (result.reason or "")


def test_a_workspace_emptied_while_it_is_listed_gives_what_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race above, made certain: a closed session's folder goes as its call ends."""
    from mltrainer.sandbox import paths

    (tmp_path / "kept.txt").write_text("kept")
    (tmp_path / "gone.txt").write_text("gone")
    (tmp_path / "gone_dir").mkdir()
    listed = os.scandir

    def then_delete(directory: Any) -> Any:
        if directory != tmp_path:
            return listed(directory)
        with listed(directory) as entries:
            found = list(entries)
        for entry in found:
            if entry.name == "gone_dir":
                shutil.rmtree(entry.path)
            elif entry.name == "gone.txt":
                os.remove(entry.path)
        return found

    monkeypatch.setattr(paths.os, "scandir", then_delete)
    assert set(paths.snapshot(tmp_path)) == {"kept.txt"}


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
