"""A fake Modal at the runtime's boundary (``ModalClient``), for tests: a cloud in a folder.

The Modal SDK has no offline mode, so the Modal runtime talks to Modal through a small client
(tools/runtimes/modal_boundary.py), and this is another implementation of it. Its state is a
folder (``MLTRAINER_FAKE_MODAL_ROOT``), so the server, its job workers and the test share it
across processes: ``calls.jsonl`` records every call made of it (what was sent, credentials
and secret payloads included), ``volumes/<job>/`` holds what was uploaded and what the run
wrote back, ``calls/<call_id>/`` each run's state and log.

A spawned run executes the job's entry script here, in dry-run mode (``MLTRAINER_DRY_RUN=1``,
the engine's shortest budget), in a process detached from the worker that spawned it (as a
Modal container is): killing the worker or the server leaves it running. The test steers it:
``hold()`` keeps runs waiting before they start, ``fail_next(op, n)`` makes the next n calls
of ``op`` fail with a transient error, ``script_runs(["oom", "ok"])`` decides how the next
runs end.

Servers pick it with the setting ``modal_client='fakes.modal:connect'`` (tests/ on PYTHONPATH).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

from mltrainer.state.settings import Settings
from mltrainer.tools.runtimes.base import TransientRemoteError
from mltrainer.tools.runtimes.modal_boundary import CallState, LogLine, ModalJob
from mltrainer.tools.runtimes.modal_remote import keep

ROOT_ENV = "MLTRAINER_FAKE_MODAL_ROOT"
SETTING = "fakes.modal:connect"


class FakeModal:
    """The test's handle on the fake cloud."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def calls(self, op: str | None = None) -> list[dict[str, Any]]:
        path = self.root / "calls.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        found = [json.loads(line) for line in lines]
        return [c for c in found if op is None or c["op"] == op]

    def sent_text(self) -> str:
        """Everything the fake was sent, as text (for canary scans)."""
        path = self.root / "calls.jsonl"
        return path.read_text() if path.exists() else ""

    def hold(self) -> None:
        (self.root / "hold").touch()

    def release(self) -> None:
        (self.root / "hold").unlink(missing_ok=True)

    def fail_next(self, op: str, times: int = 1, *, after: bool = False) -> None:
        """The next ``times`` calls of ``op`` answer a transient error (503); ``after``: only
        once the fake has done the work (a submission taken, its answer lost)."""
        name = "fail_after.json" if after else "fail.json"
        _update(self.root / name, lambda d: {**d, op: d.get(op, 0) + times})

    def crash_after_spawn(self) -> None:
        """The next spawn kills the process that asked for it once the run is taken: a
        worker that dies between submitting and recording the submission."""
        (self.root / "crash_after_spawn").touch()

    def runs(self) -> list[str]:
        """The call ids of every run the fake took (each one would be paid for)."""
        return sorted(p.name for p in (self.root / "calls").glob("fc-*"))

    def script_runs(self, outcomes: list[str]) -> None:
        """How the next runs end: 'ok' (run the script); 'oom', 'timeout' or 'crash' (a
        failure of the script itself) fail as Modal reports them; 'timeout@0.3' also reports
        what the run cost ($0.30)."""
        (self.root / "outcomes.json").write_text(json.dumps(outcomes))

    def runner_pids(self) -> list[int]:
        return [int(p.read_text()) for p in self.root.glob("calls/*/pid")]


def connect(settings: Settings, credentials: dict[str, str]) -> FakeModalClient:
    return FakeModalClient(Path(os.environ[ROOT_ENV]), credentials)


class FakeModalClient:
    def __init__(self, root: Path, credentials: dict[str, str]) -> None:
        self.root = root
        self.credentials = credentials
        root.mkdir(parents=True, exist_ok=True)

    def _record(self, op: str, **data: Any) -> None:
        line = {"op": op, "credentials": self.credentials, **data}
        with (self.root / "calls.jsonl").open("a") as out:
            out.write(json.dumps(line, default=str) + "\n")
        self._maybe_fail("fail.json", op)

    def _maybe_fail(self, name: str, op: str) -> None:
        failures = json.loads(_read(self.root / name) or "{}")
        if failures.get(op, 0) > 0:
            _update(self.root / name, lambda d: {**d, op: d[op] - 1})
            raise TransientRemoteError(f"fake Modal: {op} unavailable", status=503)

    def upload(self, job: ModalJob) -> None:
        self._record("upload", job_id=job.job_id)
        volume = self.root / "volumes" / job.job_id
        shutil.copytree(job.run_dir, volume / "run", dirs_exist_ok=True)
        if job.input_dir is not None:
            shutil.copytree(job.input_dir, volume / "input", dirs_exist_ok=True)

    def find(self, job_id: str) -> str | None:
        self._record("find", job_id=job_id)
        return json.loads(_read(self.root / "claims.json") or "{}").get(job_id)

    def spawn(self, job: ModalJob) -> str:
        self._record("spawn", job=job.model_dump(mode="json"), secret_env=job.secret_env)
        call_id = f"fc-{uuid.uuid4().hex[:12]}"
        _update(
            self.root / "claims.json", lambda d: {**d, job.job_id: call_id, call_id: job.job_id}
        )
        outcomes = json.loads(_read(self.root / "outcomes.json") or "[]")
        outcome = outcomes.pop(0) if outcomes else "ok"
        (self.root / "outcomes.json").write_text(json.dumps(outcomes))
        call = self.root / "calls" / call_id
        call.mkdir(parents=True)
        spec = {"job": job.model_dump(mode="json"), "env": job.secret_env, "outcome": outcome}
        (call / "call.json").write_text(json.dumps(spec))
        # Detached twice over: the run is no child of the worker, as a container is not.
        subprocess.run([sys.executable, "-P", __file__, "detach", str(call)], check=True)
        if (self.root / "crash_after_spawn").exists():
            (self.root / "crash_after_spawn").unlink()
            os.kill(os.getpid(), signal.SIGKILL)
        self._maybe_fail("fail_after.json", "spawn")
        return call_id

    def state(self, call_id: str) -> CallState:
        self._record("state", call_id=call_id)
        call = self.root / "calls" / call_id
        status = _read(call / "status.json")
        if status:
            return CallState.model_validate_json(status)
        pid = _read(call / "pid")
        if pid and not _alive(int(pid)):
            return CallState(status="failed", message="the container stopped without a result")
        return CallState(status="running" if pid else "queued")

    def logs(self, call_id: str, since: float | None) -> list[LogLine]:
        self._record("logs", call_id=call_id)
        path = self.root / "calls" / call_id / "log.jsonl"
        lines = [LogLine.model_validate_json(x) for x in (_read(path) or "").splitlines() if x]
        return [line for line in lines if since is None or line.at > since]

    def download(self, call_id: str, dest: Path) -> list[Path]:
        self._record("download", call_id=call_id)
        job_id = json.loads(_read(self.root / "claims.json") or "{}")[call_id]
        output = self.root / "volumes" / job_id / "output"
        shutil.copytree(output, dest, dirs_exist_ok=True)
        return sorted(p for p in dest.rglob("*") if p.is_file())

    def cancel(self, call_id: str) -> None:
        self._record("cancel", call_id=call_id)
        call = self.root / "calls" / call_id
        pid = _read(call / "pid")
        if pid and _alive(int(pid)):
            os.killpg(int(pid), signal.SIGKILL)
        (call / "status.json").write_text(CallState(status="cancelled").model_dump_json())


# -- the "container": runs in its own session, no child of the worker -------------------------
def run(call: Path) -> None:
    spec = json.loads((call / "call.json").read_text())
    job, root = spec["job"], call.parent.parent
    (call / "pid").write_text(str(os.getpid()))
    while (root / "hold").exists() and not (call / "status.json").exists():
        time.sleep(0.05)
    if (call / "status.json").exists():
        return  # cancelled before it started
    log = (call / "log.jsonl").open("a")

    def say(text: str) -> None:
        log.write(LogLine(at=time.time(), text=text).model_dump_json() + "\n")
        log.flush()

    if spec["outcome"] == "oom":
        say("MemoryError: the container was OOMKilled (exit code 137)\n")
        _finish(call, "failed", "OOMKilled: the container ran out of memory (exit code 137)")
        return
    if spec["outcome"].startswith("timeout"):  # 'timeout@0.3': the provider bills $0.30
        cost = float(spec["outcome"].partition("@")[2] or 0) or None
        message = f"FunctionTimeoutError: timed out after {job['timeout_s']} s"
        _finish(call, "failed", message, cost)
        return
    if spec["outcome"] == "crash":
        say("Traceback (most recent call last):\n")
        say('  File "train.py", line 3, in <module>\n')
        say("ValueError: could not convert string to float: 'n/a'\n")
        _finish(call, "failed", "RuntimeError: The script exited with code 1")
        return
    volume = root / "volumes" / job["job_id"]
    scratch = call / "scratch"
    scratch.mkdir()
    env = {**os.environ, **spec["env"], "MLTRAINER_DRY_RUN": "1"}
    env |= {"MLTRAINER_INPUT_DIR": str(volume / "input"), "MLTRAINER_OUTPUT_DIR": str(scratch)}
    command = [sys.executable, str(volume / "run" / job["entry"]), "--data", str(volume / "input")]
    proc = subprocess.Popen(
        [*command, "--output", str(scratch)],
        cwd=volume / "run",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        say(line)
    code = proc.wait()
    keep(scratch, volume / "output", job["outputs"])
    if code != 0:
        _finish(call, "failed", f"RuntimeError: The script exited with code {code}")
    else:
        _finish(call, "succeeded", "")


def _finish(call: Path, status: str, message: str, cost: float | None = None) -> None:
    state = CallState.model_validate({"status": status, "message": message, "cost_usd": cost})
    (call / "status.json").write_text(state.model_dump_json())


def _alive(pid: int) -> bool:
    try:  # a zombie (finished, not yet reaped) has stopped
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def _update(path: Path, change: Any) -> None:
    data = json.loads(_read(path) or "{}")
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(change(data)))
    os.replace(tmp, path)


if __name__ == "__main__":
    action, folder = sys.argv[1], Path(sys.argv[2])
    if action == "detach":  # start the run in a new session, then leave it to init
        subprocess.Popen(
            [sys.executable, "-P", __file__, "run", str(folder)],
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=(folder / "runner.out").open("w"),
            stderr=subprocess.STDOUT,
        )
    else:
        run(folder)


def enable(root: Path, environ: Any) -> FakeModal:
    """Point servers and their workers at a fake cloud in ``root``: ``environ`` is pytest's
    monkeypatch (its setenv reaches the job workers, which inherit the environment)."""
    tests = Path(__file__).resolve().parent.parent
    environ.setenv(ROOT_ENV, str(root))
    environ.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(tests), os.environ.get("PYTHONPATH")]))
    )
    environ.setenv("MODAL_TOKEN_ID", "ak-fake0123456789")
    environ.setenv("MODAL_TOKEN_SECRET", "as-fakeSecret0123456789")
    return FakeModal(root)


def fast_settings(home: Path, **extra: Any) -> Settings:
    """Settings for a server on the fake: short polls and retry waits."""
    return Settings(
        home=home,
        modal_client=SETTING,
        remote_poll_s=0.2,
        remote_retry_wait_s=0.05,
        **extra,
    )
