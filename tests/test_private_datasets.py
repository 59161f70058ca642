"""Downloaded data stays out of other users' reach and within the sandbox's.

The state directory is private (folders 0700); a downloaded dataset's files are 0644 inside
it, because a Docker sandbox runs as an unprivileged user that is given the files one by one.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import connect, payload
from fakes.base import Response
from fakes.data import TRAIN_CSV, FileServer
from sandbox_fixtures import backend_problem

from mltrainer.state.files import private_umask, tighten_state_dir
from mltrainer.state.settings import Settings


@pytest.fixture
def private_process() -> Iterator[None]:
    previous = private_umask()
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.anyio
@pytest.mark.docker
async def test_a_docker_sandbox_reads_a_dataset_downloaded_under_the_private_umask(
    home: Path, private_process: None
) -> None:
    if problem := backend_problem("docker"):
        pytest.skip(f"Docker cannot run here: {problem}")
    settings = Settings(home=home, sandbox="docker", allow_loopback_http=True)
    with FileServer() as server:
        server.files["/train.csv"] = Response(200, TRAIN_CSV)
        async with connect("memory", settings) as client:
            got = payload(
                await client.call_tool(
                    "download_dataset", {"ref": f"http://127.0.0.1:{server.port}/train.csv"}
                )
            )
            path = Path(got["local_dir"]) / "train.csv"
            run = payload(
                await client.call_tool(
                    "run_code",
                    {"code": f"print(len(open({str(path)!r}).read()))", "files": [str(path)]},
                )
            )
    assert run["status"] == "ok", run["stderr"]
    assert run["stdout"].strip() == str(len(TRAIN_CSV.decode()))
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(settings.datasets_dir.stat().st_mode) == 0o700


def test_tightening_at_start_keeps_dataset_files_readable_by_the_sandbox(
    settings: Settings,
) -> None:
    data = settings.datasets_dir / "ds_000000000001"
    data.mkdir(parents=True, mode=0o755)
    (data / "train.csv").write_text("a,b\n1,2\n")
    os.chmod(data / "train.csv", 0o644)
    tighten_state_dir(settings)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "train.csv").stat().st_mode) == 0o644
