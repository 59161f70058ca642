"""The real ``ModalClient``: the ``modal`` SDK behind the boundary modal.py draws.

A job becomes a deployed Modal app (``mltrainer-<job>``) with one function, ``run_entry``
(modal_remote.py) -- and, for an engine job with ``parallel`` > 1, ``run_trial``, which the
engine's search calls once per trial (tools/training/engine/fanout.py) -- whose image is Debian slim with this machine's Python version, the job's
pinned requirements and the project's packages as local Python source (``mltrainer.tools``,
``.state``, ``.sandbox``: located package by package, see source.py). The function gets the
requested GPU, a CPU and memory request equal to its limit (so the bill cannot exceed the
estimate), the timeout, the job's Volume and, when secrets were named, a Modal secret made
for the run. The run is spawned, and found again after a restart, by its call id.

``build_app`` makes those objects without any network call; everything else talks to Modal.
Its errors become the project's typed errors; what is worth retrying (a dropped connection,
a 5xx, throttling) becomes ``TransientRemoteError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from mltrainer.state.errors import (
    InvalidInput,
    MLTrainerError,
    PermissionDenied,
    RemoteServiceError,
    SecretError,
)
from mltrainer.tools.runtimes.base import TransientRemoteError
from mltrainer.tools.runtimes.modal_boundary import CallState, LogLine, ModalJob
from mltrainer.tools.runtimes.modal_remote import (
    MOUNT,
    SUBMISSIONS,
    run_entry,
    run_trial,
    volume_name,
)
from mltrainer.tools.runtimes.source import PACKAGES, shipped
from mltrainer.tools.training.engine.fanout import TRIAL_FUNCTION

if TYPE_CHECKING:
    import modal

FUNCTION = "run_entry"


class ModalApp(NamedTuple):
    """A job's Modal objects; ``trials`` is the fan-out function (``parallel`` > 1 only)."""

    app: modal.App
    function: modal.Function
    image: modal.Image
    volume: modal.Volume
    trials: modal.Function | None


def build_app(job: ModalJob) -> ModalApp:
    """The app, function, image and Volume of ``job``, built locally (no network)."""
    import modal

    image = (
        modal.Image.debian_slim(python_version=job.python_version)
        .pip_install(*job.requirements)
        .add_local_python_source(*PACKAGES, ignore=lambda path: not shipped(path))
    )
    volume = modal.Volume.from_name(volume_name(job.job_id), create_if_missing=True)
    values: dict[str, str | None] = dict(job.secret_env)
    secrets = [modal.Secret.from_dict(values)] if values else []
    app = modal.App(job.app_name)
    function = app.function(
        image=image, secrets=secrets, volumes={MOUNT: volume}, **function_options(job)
    )(run_entry)
    trials = None
    if job.parallel > 1:  # the engine's search fans out: one trial per container, no secrets
        options = trial_options(job)
        trials = app.function(image=image, volumes={MOUNT: volume}, **options)(run_trial)
    return ModalApp(app, function, image, volume, trials)


def function_options(job: ModalJob) -> dict[str, Any]:
    """The function's resources: CPU and memory limits equal to the request (Modal bills the
    higher of request and use, so the bill cannot pass the estimate), no retries (a retry
    would be a second paid run), the pickled function by reference to its module."""
    return {
        "gpu": job.gpu,
        "cpu": (job.cpu, job.cpu),
        "memory": (job.memory_mb, job.memory_mb),
        "timeout": job.timeout_s,
        "startup_timeout": job.startup_timeout_s,
        "retries": 0,
        "serialized": True,
        "name": FUNCTION,
    }


def trial_options(job: ModalJob) -> dict[str, Any]:
    """The fan-out function's: the job's resources for each trial's container, at most
    ``parallel`` of them at once (what the estimate prices)."""
    return {**function_options(job), "name": TRIAL_FUNCTION, "max_containers": job.parallel}


class SdkModalClient:
    def __init__(self, server_url: str, credentials: dict[str, str]) -> None:
        self.server_url = server_url
        self._credentials = (credentials["MODAL_TOKEN_ID"], credentials["MODAL_TOKEN_SECRET"])
        self._client: modal.Client | None = None

    def _modal(self) -> modal.Client:
        """One authenticated client, for our endpoint (``Client.from_credentials`` would read
        Modal's own configuration for the server URL instead)."""
        if self._client is None:
            import modal
            from modal_proto import api_pb2

            with modal_errors():
                client = modal.Client(
                    self.server_url, api_pb2.CLIENT_TYPE_CLIENT, self._credentials
                )
                client._open()  # what from_credentials does after building the client
            self._client = client
        return self._client

    def _claims(self) -> modal.Dict:
        import modal

        return modal.Dict.from_name(SUBMISSIONS, create_if_missing=True, client=self._modal())

    def upload(self, job: ModalJob) -> None:
        import modal

        with modal_errors():
            volume = modal.Volume.from_name(
                volume_name(job.job_id), create_if_missing=True, client=self._modal()
            )
            with volume.batch_upload(force=True) as batch:
                batch.put_directory(str(job.run_dir), "/run")
                if job.input_dir is not None:
                    batch.put_directory(str(job.input_dir), "/input")

    def find(self, job_id: str) -> str | None:
        with modal_errors():
            found = self._claims().get(job_id)
        return str(found) if found else None

    def spawn(self, job: ModalJob) -> str:
        """Deploy the job's app and spawn its function; a job some call already claimed is
        not run again: the new call is cancelled and the earlier one returned."""
        import modal

        app = build_app(job).app
        with modal_errors():
            app.deploy(name=job.app_name, client=self._modal())
            function = modal.Function.from_name(job.app_name, FUNCTION, client=self._modal())
            call = function.spawn(job.job_id, job.entry, job.outputs)
            claims = self._claims()
            if not claims.put(job.job_id, call.object_id, skip_if_exists=True):
                earlier = str(claims.get(job.job_id))
                if earlier != call.object_id:
                    call.cancel(terminate_containers=True)
                    return earlier
            claims.put(call.object_id, job.job_id)
        return str(call.object_id)

    def _call(self, call_id: str) -> modal.FunctionCall[Any]:
        import modal

        return modal.FunctionCall.from_id(call_id, client=self._modal())

    def state(self, call_id: str) -> CallState:
        import modal.exception as errors

        try:
            with modal_errors(passing=(TimeoutError, errors.Error)):
                result = self._call(call_id).get(timeout=0)
        except (errors.FunctionTimeoutError, errors.OutputExpiredError) as exc:
            return CallState(status="failed", message=f"timed out: {exc}")
        except TimeoutError:
            return CallState(status="running")
        except errors.Error as exc:
            return CallState(status="failed", message=f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # the script's own error, raised again here
            message = f"{type(exc).__name__}: {exc}"
            if "cancel" in str(exc).lower():
                return CallState(status="cancelled", message=message)
            return CallState(status="failed", message=message)
        if isinstance(result, dict) and result.get("duplicate_of"):
            return CallState(status="failed", message=f"duplicate of {result['duplicate_of']}")
        return CallState(status="succeeded")

    def logs(self, call_id: str, since: float | None) -> list[LogLine]:
        start = datetime.fromtimestamp(since, UTC) if since is not None else None
        with modal_errors():
            entries = list(self._call(call_id).logs.fetch(since=start))
        lines = [LogLine(at=e.timestamp.timestamp(), text=e.message) for e in entries]
        return [line for line in lines if since is None or line.at > since]

    def download(self, call_id: str, dest: Path) -> list[Path]:
        import modal
        from modal.types import FileEntryType

        with modal_errors():
            job_id = str(self._claims().get(call_id))
            volume = modal.Volume.from_name(volume_name(job_id), client=self._modal())
            written = []
            for entry in volume.listdir("/output", recursive=True):
                if entry.type != FileEntryType.FILE:
                    continue
                target = dest / Path(entry.path).relative_to("output")
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("wb") as out:
                    for chunk in volume.read_file(entry.path):
                        out.write(chunk)
                written.append(target)
        return written

    def cancel(self, call_id: str) -> None:
        with modal_errors():
            self._call(call_id).cancel(terminate_containers=True)


@contextmanager
def modal_errors(passing: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Modal's exceptions as the project's; ``passing`` ones go through unchanged."""
    import modal.exception as errors

    try:
        yield
    except MLTrainerError:
        raise
    except passing:
        raise
    except (errors.ConnectionError, errors.ServiceError, errors.InternalError) as exc:
        raise TransientRemoteError(f"Modal could not be reached: {exc}") from exc
    except errors.ResourceExhaustedError as exc:
        raise TransientRemoteError(f"Modal is throttling requests: {exc}", status=429) from exc
    except errors.AuthError as exc:
        raise SecretError(
            "Modal refused the credentials of secret://MODAL.",
            next_step="Check MODAL_TOKEN_ID and MODAL_TOKEN_SECRET ('modal token new' makes a "
            "pair), then set them with set_secret or 'mltrainer secrets set'.",
        ) from exc
    except errors.PermissionDeniedError as exc:
        raise PermissionDenied(f"Modal refused: {exc}") from exc
    except errors.InvalidError as exc:
        raise InvalidInput(f"Modal refused the run: {exc}") from exc
    except errors.NotFoundError as exc:
        raise RemoteServiceError(f"Modal has no such object: {exc}", status=404) from exc
    except errors.Error as exc:
        raise RemoteServiceError(f"Modal failed: {exc}") from exc
    except OSError as exc:
        raise TransientRemoteError(f"The connection to Modal failed: {exc}") from exc
