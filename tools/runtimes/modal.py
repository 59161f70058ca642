"""Modal: a remote run as a Modal function, behind a small boundary (``ModalClient``).

``ModalRuntime`` implements the ``Runtime`` contract from the catalogue (what Modal accepts
and costs) and a ``ModalClient``, the few calls it needs of Modal: upload the run folder and
data to a Volume, find an earlier submission of a job, spawn the function, read its state and
logs, download the output folder, cancel. The real client (modal_sdk.py) drives the ``modal``
SDK; the SDK has no offline mode and retries for about a minute on a bad endpoint, so tests
put a fake at this boundary (tests/fakes/modal.py) chosen by the setting ``modal_client``.

Credentials: ``secret://MODAL`` is resolved through the vault for Modal's API URL (never from
the environment directly). Secrets named in the spec are resolved only when the run is
submitted, for the same URL (so each must be bound to Modal's host), and reach the run as a
Modal secret created for it: never the script, the metadata or the logs.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from mltrainer.state.errors import SecretError
from mltrainer.state.secret_refs import parse_reference
from mltrainer.state.secrets import SecretVault, modal_api_url
from mltrainer.state.settings import Settings
from mltrainer.tools.runtimes.base import (
    CancelOutcome,
    CostEstimate,
    Handle,
    LogChunk,
    RemoteSpec,
    RemoteState,
    RuntimeName,
    SpecProblem,
)
from mltrainer.tools.runtimes.catalogue import Provider, catalogue
from mltrainer.tools.runtimes.files import size_bytes
from mltrainer.tools.runtimes.modal_boundary import ModalClient, ModalJob
from mltrainer.tools.runtimes.modal_remote import volume_name
from mltrainer.tools.runtimes.source import python_version

MODAL_SECRET = "secret://MODAL"
GB = 1024**3


class ModalRuntime:
    name: RuntimeName = "modal"

    def __init__(self, settings: Settings, vault: SecretVault, client: ModalClient) -> None:
        self.settings = settings
        self.vault = vault
        self.client = client
        self.provider: Provider = catalogue().provider("modal")

    @classmethod
    def connect(cls, settings: Settings, vault: SecretVault) -> ModalRuntime:
        """The runtime with its client; refuses at once when secret://MODAL is not set."""
        url = modal_api_url(settings, os.environ)
        credentials = vault.credential(MODAL_SECRET, destination=url)
        if settings.modal_client:
            module, _, factory = settings.modal_client.partition(":")
            make = getattr(importlib.import_module(module), factory)
            return cls(settings, vault, make(settings, credentials))
        from mltrainer.tools.runtimes.modal_sdk import SdkModalClient

        return cls(settings, vault, SdkModalClient(url, credentials))

    # -- before anything is sent ------------------------------------------------------------
    def validate(self, spec: RemoteSpec) -> list[SpecProblem]:
        limits, res = self.provider.limits, spec.resources
        problems = []
        if res.gpu is not None:
            name = catalogue().gpu_name(res.gpu)
            if name is None or name not in self.provider.gpus:
                problems.append(
                    SpecProblem(
                        field="gpu",
                        message=f"Modal has no GPU {res.gpu!r}; it offers "
                        f"{', '.join(self.provider.gpus)} (catalogue of {self.provider.as_of}).",
                    )
                )
            else:
                most = limits.gpu_count.by_gpu.get(name, limits.gpu_count.max)
                if res.gpu_count > most:
                    problems.append(
                        SpecProblem(
                            field="gpu_count", message=f"Modal attaches at most {most} {name}."
                        )
                    )
        problems += _range_problems(spec, self.provider)
        for reference in spec.secrets:  # each must be declared, set and bound to Modal's host
            try:
                self._secret_env([reference])
            except SecretError as exc:
                problems.append(SpecProblem(field="secrets", message=str(exc)))
        parallel = limits.parallel.max_gpu if res.gpu else limits.parallel.max
        if containers(spec) > parallel:
            kind = "GPU containers" if res.gpu else "containers"
            problems.append(
                SpecProblem(
                    field="parallel",
                    message=f"parallel={res.parallel}: Modal runs at most {parallel} {kind} at "
                    f"once on its Starter plan (catalogue of {self.provider.as_of})"
                    + (", the engine's own container included." if res.parallel > 1 else "."),
                )
            )
        return problems

    def estimate_cost(self, spec: RemoteSpec) -> CostEstimate:
        return estimate(spec, self.provider)

    # -- the run ----------------------------------------------------------------------------
    def job(self, spec: RemoteSpec, *, with_secrets: bool = False) -> ModalJob:
        res, defaults = spec.resources, self.provider.defaults
        gpu = None
        if res.gpu is not None:
            name = catalogue().gpu_name(res.gpu) or res.gpu
            gpu = self.provider.gpu_names.get(name, name)
            gpu = f"{gpu}:{res.gpu_count}" if res.gpu_count > 1 else gpu
        return ModalJob(
            job_id=spec.job_id,
            app_name=volume_name(spec.job_id),
            run_dir=spec.run_dir,
            entry=spec.entry,
            input_dir=spec.input_dir,
            requirements=spec.requirements,
            python_version=python_version(),
            gpu=gpu,
            cpu=res.cpu or defaults.cpu,
            memory_mb=int((res.memory_gb or defaults.memory_gb) * 1024),
            timeout_s=res.timeout_s,
            startup_timeout_s=defaults.startup_timeout_s,
            outputs=spec.outputs,
            parallel=res.parallel,
            secret_env=self._secret_env(spec.secrets) if with_secrets else {},
        )

    def _secret_env(self, references: list[str]) -> dict[str, str]:
        url = modal_api_url(self.settings, os.environ)
        values: dict[str, str] = {}
        for reference in references:
            parse_reference(reference)
            values.update(self.vault.credential(reference, destination=url))
        return values

    def upload(self, spec: RemoteSpec) -> None:
        self.client.upload(self.job(spec))

    def find(self, job_id: str) -> Handle | None:
        call_id = self.client.find(job_id)
        return None if call_id is None else self._handle(call_id)

    def submit(self, spec: RemoteSpec) -> Handle:
        return self._handle(self.client.spawn(self.job(spec, with_secrets=True)))

    def _handle(self, call_id: str) -> Handle:
        return Handle(runtime="modal", remote_id=call_id, url=f"https://modal.com/id/{call_id}")

    def status(self, handle: Handle) -> RemoteState:
        state = self.client.state(handle.remote_id)
        return RemoteState(status=state.status, message=state.message, cost_usd=state.cost_usd)

    def logs(self, handle: Handle, cursor: str | None) -> LogChunk:
        since = float(cursor) if cursor else None
        lines = self.client.logs(handle.remote_id, since)
        if not lines:
            return LogChunk(text="", cursor=cursor)
        return LogChunk(text="".join(line.text for line in lines), cursor=repr(lines[-1].at))

    def fetch(self, handle: Handle, dest: Path) -> list[Path]:
        return self.client.download(handle.remote_id, dest)

    def cancel(self, handle: Handle) -> CancelOutcome:
        self.client.cancel(handle.remote_id)
        return CancelOutcome(
            stopped=True, message=f"Modal was asked to stop call {handle.remote_id}."
        )


def _range_problems(spec: RemoteSpec, provider: Provider) -> list[SpecProblem]:
    limits, res = provider.limits, spec.resources
    checks = [
        ("timeout_s", float(res.timeout_s), limits.timeout_s, "seconds"),
        ("cpu", res.cpu, limits.cpu, "cores"),
        ("memory_gb", res.memory_gb, limits.memory_gb, "GB"),
    ]
    problems = []
    for field, value, allowed, unit in checks:
        if value is None:
            continue
        if allowed.max is not None and value > allowed.max:
            problems.append(
                SpecProblem(
                    field=field,
                    message=f"{field}={value:g} is over {provider.name}'s limit of "
                    f"{allowed.max:g} {unit} (catalogue of {provider.as_of}).",
                )
            )
        if allowed.min is not None and value < allowed.min:
            problems.append(
                SpecProblem(
                    field=field,
                    message=f"{field}={value:g} is under {provider.name}'s minimum of "
                    f"{allowed.min:g} {unit}.",
                )
            )
    if spec.input_dir is not None and provider.limits.dataset_gb is not None:
        size = size_bytes(spec.input_dir) / GB
        if size > provider.limits.dataset_gb:
            problems.append(
                SpecProblem(
                    field="dataset",
                    message=f"{size:.3g} GB of data: {provider.name} takes at most "
                    f"{provider.limits.dataset_gb:g} GB per dataset.",
                )
            )
    return problems


def containers(spec: RemoteSpec) -> int:
    """The containers a run may hold at once: an engine job with ``parallel`` > 1 runs its
    search's trials in ``parallel`` containers (fanout.py) beside the one running the engine."""
    fans_out = spec.kind == "engine" and spec.resources.parallel > 1
    return spec.resources.parallel + (1 if fans_out else 0)


def estimate(spec: RemoteSpec, provider: Provider) -> CostEstimate:
    """The most a run can cost: its resources (at least the defaults) from its start until its
    timeout, for each of its parallel containers."""
    res, prices, defaults = spec.resources, provider.prices_usd_per_s, provider.defaults
    cpu, memory = res.cpu or defaults.cpu, res.memory_gb or defaults.memory_gb
    per_s = cpu * prices.cpu_core + memory * prices.memory_gib
    parts = [
        f"{cpu:g} CPU × ${prices.cpu_core * 3600:.3f}/h",
        f"{memory:g} GiB × ${prices.memory_gib * 3600:.4f}/h",
    ]
    if res.gpu is not None:
        name = catalogue().gpu_name(res.gpu) or res.gpu
        gpu_price = prices.gpu.get(name, 0.0)
        per_s += res.gpu_count * gpu_price
        parts.insert(0, f"{res.gpu_count} × {name} ${gpu_price * 3600:.2f}/h")
    seconds = res.timeout_s + defaults.startup_timeout_s
    count = containers(spec)
    usd = per_s * seconds * count
    basis = " + ".join(parts) + f" for {seconds / 3600:.2f} h (timeout + start-up)"
    if count > res.parallel:
        basis += f" × {count} containers ({res.parallel} for the search's trials + the engine's)"
    elif count > 1:
        basis += f" × {count} containers"
    return CostEstimate(
        usd=round(usd, 4),
        usd_per_hour=round(per_s * 3600 * count, 4),
        basis=basis,
        prices_as_of=provider.as_of,
        free=provider.free,
    )
