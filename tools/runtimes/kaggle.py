"""The Kaggle kernels runtime: a job runs as a private Kaggle kernel (a script), its data as a
private Kaggle dataset or a Kaggle dataset/competition mounted directly.

    runtime = KaggleRuntime(settings, vault)
    runtime.validate(spec)                       # kaggle_limits: no network
    runtime.upload(spec)                         # input_dir as a private dataset (kaggle_data)
    handle = runtime.find(spec.job_id) or runtime.submit(spec)

The kernel of a job is ``<account>/mltrainer-<job id>`` (kaggle_limits.kernel_slug), so it is
found again after a restart; its script (kaggle_script) carries the job id and a digest of the
spec, so ``submit`` pushes nothing when that exact spec is already there (a retried or
repeated submission never starts, and spends quota on, a second run; a changed spec, new data
included, is a new version of the kernel), and refuses a kernel of that name that is not ours.
Kaggle's API cannot stop a running kernel: ``cancel`` says so.
Credentials: ``secret://KAGGLE`` through the vault, sent only to Kaggle's API.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import requests

from mltrainer.state.errors import (
    InvalidInput,
    MLTrainerError,
    PermissionDenied,
    RemoteServiceError,
)
from mltrainer.state.secrets import SecretVault, kaggle_api_url
from mltrainer.state.settings import Settings
from mltrainer.tools.datasets.kaggle_client import REQUEST_TIMEOUT, make_api
from mltrainer.tools.datasets.refs import safe_member
from mltrainer.tools.runtimes import kaggle_data
from mltrainer.tools.runtimes.base import (
    TERMINAL_REMOTE,
    CancelOutcome,
    CostEstimate,
    Handle,
    LogChunk,
    RemoteSpec,
    RemoteState,
    RemoteStatus,
    RuntimeName,
    SpecProblem,
)
from mltrainer.tools.runtimes.kaggle_limits import (
    CATALOGUE,
    OWNER,
    KaggleCatalogue,
    check,
    dataset_slug,
    estimate,
    kernel_slug,
    machine_for,
    source_ref,
    valid_job_id,
)
from mltrainer.tools.runtimes.kaggle_remote import WEB, Remote, push_refusal, translate
from mltrainer.tools.runtimes.kaggle_script import (
    JOB_MARKER,
    OUTPUT_DIR,
    SPEC_MARKER,
    KernelPlan,
    marker,
    plan,
)
from mltrainer.tools.runtimes.source import source_copy

LOG_NAME = "kaggle_kernel.log"  # written into fetch's dest, unless an output has that name
LOG_TAIL_LINES = 30
STATUSES: dict[str, RemoteStatus] = {
    "QUEUED": "queued",
    "NEW_SCRIPT": "queued",
    "RUNNING": "running",
    "COMPLETE": "succeeded",
    "ERROR": "failed",
    "CANCEL_REQUESTED": "cancelled",
    "CANCEL_ACKNOWLEDGED": "cancelled",
}
REMOTE_ID_RE = re.compile(rf"^(?P<owner>{OWNER})/(?P<slug>[a-z0-9-]{{5,50}})$")


class KaggleRuntime:
    name: RuntimeName = "kaggle"

    def __init__(
        self,
        settings: Settings,
        vault: SecretVault,
        *,
        credentials: str = "secret://KAGGLE",
        catalogue: KaggleCatalogue = CATALOGUE,
        dataset_ready_timeout_s: float = 900.0,
    ) -> None:
        self.settings = settings
        self.vault = vault
        self.credentials = credentials
        self.catalogue = catalogue
        self.dataset_ready_timeout_s = dataset_ready_timeout_s
        self._accounts: dict[str, str] = {}  # sha256 of the credentials -> account name

    @classmethod
    def connect(cls, settings: Settings, vault: SecretVault) -> KaggleRuntime:
        """The runtime; refuses at once when secret://KAGGLE is not set (resolved, not sent)."""
        vault.credential("secret://KAGGLE", destination=kaggle_api_url(settings))
        return cls(settings, vault)

    # -- before anything is sent ------------------------------------------------------------
    def validate(self, spec: RemoteSpec) -> list[SpecProblem]:
        return check(spec, self.catalogue)

    def estimate_cost(self, spec: RemoteSpec) -> CostEstimate:
        return estimate(spec, self.catalogue)

    def _refuse_invalid(self, spec: RemoteSpec) -> None:
        if problems := self.validate(spec):
            raise InvalidInput(
                "Kaggle would refuse this run: "
                + "; ".join(f"{p.field}: {p.message}" for p in problems)
            )

    # -- submission -------------------------------------------------------------------------
    def find(self, job_id: str) -> Handle | None:
        if not valid_job_id(job_id):
            raise InvalidInput(f"'{job_id[:80]}' is not a job id a Kaggle kernel is named by.")
        remote, owner = self._connect()
        slug = kernel_slug(job_id)
        kernel = remote.kernel(owner, slug)
        if kernel is None:
            return None
        _ours(kernel, job_id, f"{owner}/{slug}")
        return _handle(owner, slug)

    def submit(self, spec: RemoteSpec) -> Handle:
        self._refuse_invalid(spec)
        remote, owner = self._connect()
        content = kaggle_data.digest(spec.input_dir) if spec.input_dir else None
        kernel = self._plan(spec, owner, content)
        slug = kernel_slug(spec.job_id)
        existing = remote.kernel(owner, slug)
        if existing is not None:
            _ours(existing, spec.job_id, kernel.metadata.id)
            if marker(_source(existing), SPEC_MARKER) == kernel.digest:
                return _handle(owner, slug)  # this very spec was pushed already
        if kernel.metadata.enable_gpu:
            self._check_gpu_quota(remote)
        self._ensure_data(remote, owner, spec, content)  # done by upload: nothing sent again
        self._push(remote, kernel, spec.resources.timeout_s)
        return _handle(owner, slug)

    def upload(self, spec: RemoteSpec) -> None:
        """``input_dir`` as the job's private Kaggle dataset, created or given a new version
        only when Kaggle does not hold that content yet (so a retry or a restart sends
        nothing again). The run folder travels inside the kernel's script (kaggle_script),
        so there is nothing else to ship ahead of ``submit``."""
        if spec.input_dir is None:
            return
        self._refuse_invalid(spec)
        remote, owner = self._connect()
        self._ensure_data(remote, owner, spec, kaggle_data.digest(spec.input_dir))

    def _ensure_data(
        self, remote: Remote, owner: str, spec: RemoteSpec, content: str | None
    ) -> None:
        if spec.input_dir is None or content is None:
            return
        kaggle_data.ensure(
            remote,
            owner,
            spec.job_id,
            spec.input_dir,
            content,
            ready_timeout_s=self.dataset_ready_timeout_s,
        )

    def _plan(self, spec: RemoteSpec, owner: str, content: str | None) -> KernelPlan:
        datasets: list[str] = []
        competitions: list[str] = []
        mounts: list[str] = []
        ref = source_ref(spec)
        if spec.input_dir is not None:
            datasets.append(f"{owner}/{dataset_slug(spec.job_id)}")
            mounts.append(dataset_slug(spec.job_id))
        elif ref is not None and ref.source == "kaggle":
            version = f"/{ref.version}" if ref.version else ""
            datasets.append(f"{ref.owner}/{ref.name}{version}")
            mounts.append(str(ref.name))
        elif ref is not None:
            competitions.append(str(ref.name))
            mounts.append(str(ref.name))
        return plan(
            spec,
            owner=owner,
            machine=machine_for(spec, self.catalogue),
            mounts=mounts,
            dataset_sources=datasets,
            competition_sources=competitions,
            data_digest=content,
            code_dir=source_copy(self.settings.home) if spec.kind == "engine" else None,
        )

    def _check_gpu_quota(self, remote: Remote) -> None:
        left, total, refresh = remote.gpu_quota_left()
        if left > 0:
            return
        when = f"; it refreshes at {refresh:%Y-%m-%d %H:%M} UTC" if refresh else ""
        raise PermissionDenied(
            f"The weekly Kaggle GPU quota of this account is used up ({total:g} h){when}.",
            next_step="Run without a GPU (gpu=None), wait for the refresh, or use runtime='modal'.",
        )

    def _push(self, remote: Remote, kernel: KernelPlan, timeout_s: int) -> None:
        with tempfile.TemporaryDirectory(prefix="mltrainer-kernel-") as folder:
            kernel.write(Path(folder))
            answer = remote.run(
                f"pushing the kernel {kernel.metadata.id}",
                lambda: remote.api.kernels_push(folder, timeout=str(timeout_s)),
            )
        if refusal := push_refusal(answer, kernel.metadata.id, remote.masker):
            raise refusal

    # -- a submitted run --------------------------------------------------------------------
    def status(self, handle: Handle) -> RemoteState:
        owner, slug = _parse(handle)
        remote, _ = self._connect()
        name, failure = remote.status(owner, slug)
        status = STATUSES.get(name, "queued")
        if status != "failed":
            return RemoteState(status=status, message=f"Kaggle reports {name.lower()}.")
        tail = "\n".join(self._log(remote, owner, slug).splitlines()[-LOG_TAIL_LINES:])
        return RemoteState(
            status="failed",
            message=f"The Kaggle kernel {owner}/{slug} failed: {failure or 'no reason given'}."
            f"\nLast lines of its log:\n{tail or '(empty)'}\nNext: fix what the log shows and "
            f"run the job again; the whole log is in the job's log and at {_url(owner, slug)}.",
        )

    def logs(self, handle: Handle, cursor: str | None) -> LogChunk:
        """What the kernel has logged since ``cursor`` (a character offset). Kaggle hands the
        log out with the run's output, so a running kernel's may still be empty."""
        owner, slug = _parse(handle)
        if cursor is not None and not cursor.isdigit():
            raise InvalidInput(f"'{cursor[:40]}' is not a log cursor of a Kaggle kernel.")
        remote, _ = self._connect()
        text = self._log(remote, owner, slug)
        start = int(cursor or 0)
        start = 0 if start > len(text) else start  # a new run replaced the log
        return LogChunk(text=text[start:], cursor=str(len(text)))

    def _log(self, remote: Remote, owner: str, slug: str) -> str:
        _, raw = remote.output(owner, slug, files=False)
        return remote.masker.mask(log_text(raw))

    def fetch(self, handle: Handle, dest: Path) -> list[Path]:
        """The run's output folder (/kaggle/working/output) into ``dest``, and its log."""
        owner, slug = _parse(handle)
        remote, _ = self._connect()
        files, raw = remote.output(owner, slug)
        dest.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        budget = self.catalogue.max_output_bytes
        for name, url in files:
            rel = safe_member(name)
            if not rel.startswith(f"{OUTPUT_DIR}/"):
                continue  # the bootstrap's own files, not the run's output
            target = dest / rel.removeprefix(f"{OUTPUT_DIR}/")
            budget -= _download(url, target, budget, remote)
            written.append(target)
        log = dest / LOG_NAME
        if log not in written:
            log.write_text(remote.masker.mask(log_text(raw)), encoding="utf-8")
            written.append(log)
        return written

    def cancel(self, handle: Handle) -> CancelOutcome:
        owner, slug = _parse(handle)
        remote, _ = self._connect()
        name, _ = remote.status(owner, slug)
        if STATUSES.get(name, "queued") in TERMINAL_REMOTE:
            return CancelOutcome(
                stopped=True, message=f"The Kaggle kernel {owner}/{slug} had already ended."
            )
        return CancelOutcome(
            stopped=False,
            message=f"Kaggle's API cannot stop a running kernel (its cancel call needs a session "
            "id that the API never returns; see Kaggle/kaggle-cli#1174), so the kernel "
            f"{owner}/{slug} may go on until it ends or reaches its timeout (12 h at most), "
            f"using quota. To stop it now, open {_url(owner, slug)} and stop the session.",
        )

    # -- helpers ----------------------------------------------------------------------------
    def _connect(self) -> tuple[Remote, str]:
        """A client for secret://KAGGLE (sent to Kaggle's API only) and the account name.

        With an API token alone, the account is what Kaggle's IntrospectToken answers for it
        (the token in that call's body, as the kaggle client itself does it): asked once per
        token and runtime, not on every call."""
        credentials = self.vault.credential(
            self.credentials, destination=kaggle_api_url(self.settings)
        )
        remote = Remote(make_api(self.settings, credentials), self.vault.masker())
        key = hashlib.sha256(json.dumps(credentials, sort_keys=True).encode()).hexdigest()
        if key not in self._accounts:
            self._accounts[key] = remote.account(credentials)
        return remote, self._accounts[key]


def log_text(raw: str) -> str:
    """Kaggle stores a kernel's log as a JSON list of {stream_name, time, data} events: the
    text of the events, in order (any other log is returned as it is)."""
    try:
        events = json.loads(raw) if raw.strip().startswith("[") else None
    except ValueError:
        events = None
    if not isinstance(events, list):
        return raw
    return "".join(str(e.get("data", "")) for e in events if isinstance(e, dict))


def _source(kernel: Any) -> str:
    return str(getattr(kernel.blob, "source", "") or "") if kernel.blob else ""


def _ours(kernel: Any, job_id: str, ref: str) -> None:
    """Refuse a kernel of our name that another hand made: we never overwrite it."""
    if marker(_source(kernel), JOB_MARKER) != job_id:
        raise PermissionDenied(
            f"The kernel slug {ref} is taken by another kernel, not one this server pushed "
            f"for the job {job_id}.",
            next_step=f"Rename or delete that kernel at {WEB}/code/{ref} if it is no longer "
            "needed, or run the job again under a new job id.",
        )


def _handle(owner: str, slug: str) -> Handle:
    return Handle(runtime="kaggle", remote_id=f"{owner}/{slug}", url=_url(owner, slug))


def _url(owner: str, slug: str) -> str:
    return f"{WEB}/code/{owner}/{slug}"


def _parse(handle: Handle) -> tuple[str, str]:
    match = REMOTE_ID_RE.fullmatch(handle.remote_id)
    if handle.runtime != "kaggle" or match is None:
        raise InvalidInput(f"'{handle.remote_id[:80]}' is not a Kaggle kernel of this runtime.")
    return match["owner"], match["slug"]


def _download(url: str, target: Path, budget: int, remote: Remote) -> int:
    """Stream one output file from its signed URL (no credentials go with it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    try:
        with requests.get(url, stream=True, timeout=REQUEST_TIMEOUT) as answer:
            answer.raise_for_status()
            with target.open("wb") as out:
                for chunk in answer.iter_content(1024 * 1024):
                    written += len(chunk)
                    if written > budget:
                        raise RemoteServiceError(
                            f"The kernel's output goes past {budget:,} bytes at {target.name}, "
                            "more than a Kaggle kernel keeps; refusing to download more.",
                            next_step="Check what the script writes to MLTRAINER_OUTPUT_DIR.",
                        )
                    out.write(chunk)
    except MLTrainerError:
        target.unlink(missing_ok=True)
        raise
    except requests.RequestException as exc:
        target.unlink(missing_ok=True)
        raise translate(exc, f"downloading the output file {target.name}", remote.masker) from None
    return written
