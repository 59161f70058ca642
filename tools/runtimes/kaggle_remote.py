"""The Kaggle API calls the kernels runtime makes, through the official client (``kaggle`` +
``kagglesdk``), and the one place their failures become the project's errors.

Every call runs quietly (the client prints) and is translated: 401 → ``SecretError``;
403 → ``PermissionDenied``; 404 → ``NotFound``; 429, 5xx, timeouts and dropped connections →
``TransientRemoteError``, which the job code retries with backoff (nothing here retries, so
retry budgets do not multiply). Text that comes back from Kaggle is masked before it goes
into a message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests

from mltrainer.state.errors import (
    MLTrainerError,
    NotFound,
    PermissionDenied,
    RemoteServiceError,
    SecretError,
)
from mltrainer.state.masking import Masker
from mltrainer.tools.datasets.kaggle_client import http_status, quiet_stdout
from mltrainer.tools.runtimes.base import TransientRemoteError
from mltrainer.tools.runtimes.kaggle_limits import OWNER_RE

T = TypeVar("T")
WEB = "https://www.kaggle.com"
CREDENTIALS_HELP = (
    "Check secret://KAGGLE: set KAGGLE_USERNAME and KAGGLE_KEY (or KAGGLE_API_TOKEN) from "
    "https://www.kaggle.com/settings, then try again."
)


def translate(exc: Exception, what: str, masker: Masker) -> MLTrainerError:
    """A failure of the Kaggle client while doing ``what``, as an error that says what next."""
    if isinstance(exc, MLTrainerError):
        return exc
    status = http_status(exc)
    said = masker.mask(str(exc))[:300]
    if status == 401:
        return SecretError(
            f"Kaggle rejected the credentials while {what} (HTTP 401).",
            next_step=CREDENTIALS_HELP,
        )
    if status == 403:
        return PermissionDenied(
            f"Kaggle refused {what} (HTTP 403: {said}).",
            next_step="The account of secret://KAGGLE may not do this: check on kaggle.com that "
            "it owns the kernel or dataset, has accepted any competition rules, and has a "
            "verified phone number (needed for GPUs and internet in kernels).",
        )
    if status == 404:
        return NotFound(f"Kaggle found nothing while {what} (HTTP 404: {said}).")
    if status == 429 or (status is not None and status >= 500):
        return TransientRemoteError(
            f"Kaggle is busy or failing while {what}",
            status=status,
            next_step="Try again in a minute (the job retries this with backoff).",
        )
    if status is None and isinstance(exc, requests.ConnectionError | requests.Timeout):
        return TransientRemoteError(
            f"Could not reach Kaggle while {what} ({type(exc).__name__}).",
            next_step="Check the network (or MLTRAINER_KAGGLE_API_ENDPOINT); the job retries "
            "this with backoff.",
        )
    return RemoteServiceError(
        f"Kaggle failed while {what} ({type(exc).__name__}: {said})",
        status=status,
        next_step="Try again later; if it persists, check the kernel on kaggle.com.",
    )


def push_refusal(answer: Any, ref: str, masker: Masker) -> MLTrainerError | None:
    """What a kernel push answered with HTTP 200 but refused (a source it cannot mount, the
    GPU quota, a slug in use), as an error; None when the push was accepted."""
    if answer.invalid_competition_sources:
        names = ", ".join(answer.invalid_competition_sources)
        first = answer.invalid_competition_sources[0]
        return PermissionDenied(
            f"Kaggle would not mount the competition {names} in the kernel {ref}: the account "
            "of secret://KAGGLE has not accepted its rules (or it does not exist).",
            next_step=f"The person must accept the rules at {WEB}/competitions/{first}/rules "
            "while signed in to kaggle.com with that account; then submit again.",
        )
    if answer.invalid_dataset_sources:
        names = ", ".join(answer.invalid_dataset_sources)
        return NotFound(
            f"Kaggle would not mount the dataset {names} in the kernel {ref}: it does not exist "
            "or the account of secret://KAGGLE cannot read it.",
            next_step="Check the reference with search_datasets (source='kaggle').",
        )
    error = masker.mask(answer.error or "")[:300]
    lowered = error.lower()
    if not error:
        return None
    if "quota" in lowered:
        return PermissionDenied(
            f"Kaggle refused the kernel {ref}: {error}",
            next_step="The weekly GPU quota is used up: run without a GPU, wait for the "
            "refresh, or use runtime='modal'.",
        )
    if "slug" in lowered or "in use" in lowered or "already exists" in lowered:
        return PermissionDenied(
            f"Kaggle refused the kernel {ref}: the slug is taken by another kernel ({error}).",
            next_step=f"Rename or delete that kernel at {WEB}/code/{ref}, or run the job again "
            "under a new job id.",
        )
    return RemoteServiceError(
        f"Kaggle refused the kernel {ref}: {error}",
        next_step="Fix what Kaggle names and submit again.",
    )


@dataclass
class Remote:
    """One authenticated client and the masker for what comes back."""

    api: Any  # kaggle's KaggleApi, built by kaggle_client.make_api
    masker: Masker

    def call(self, what: str, fn: Callable[[Any], T]) -> T:
        """``fn(client)`` with a fresh kagglesdk client: quiet, failures translated."""
        try:
            with quiet_stdout(), self.api.build_kaggle_client() as client:
                return fn(client)
        except Exception as exc:
            raise translate(exc, what, self.masker) from None

    def lookup(self, what: str, fn: Callable[[Any], T]) -> T | None:
        """``call``, with None for what Kaggle does not have (HTTP 404)."""
        try:
            return self.call(what, fn)
        except NotFound:
            return None

    def run(self, what: str, fn: Callable[[], T]) -> T:
        """``fn()`` (a KaggleApi method): quiet, failures translated."""
        try:
            with quiet_stdout():
                return fn()
        except Exception as exc:
            raise translate(exc, what, self.masker) from None

    # -- account ----------------------------------------------------------------------------
    def account(self, credentials: dict[str, str]) -> str:
        """The user name kernels and datasets are created under."""
        name = credentials.get("KAGGLE_USERNAME") or self._token_owner(credentials)
        if not OWNER_RE.fullmatch(name):
            raise SecretError(
                f"'{name[:40]}' is not a Kaggle user name.", next_step=CREDENTIALS_HELP
            )
        return name

    def _token_owner(self, credentials: dict[str, str]) -> str:
        from kagglesdk.security.types.oauth_service import IntrospectTokenRequest

        request = IntrospectTokenRequest()
        request.token = credentials.get("KAGGLE_API_TOKEN", "")
        answer = self.call(
            "checking whose API token this is",
            lambda c: c.security.oauth_client.introspect_token(request),
        )
        if not answer.active or not answer.username:
            raise SecretError("Kaggle does not accept this API token.", next_step=CREDENTIALS_HELP)
        return str(answer.username)

    # -- kernels ----------------------------------------------------------------------------
    def kernel(self, owner: str, slug: str) -> Any | None:
        """The kernel ``owner/slug`` (metadata and source), or None when there is none."""
        from kagglesdk.kernels.types.kernels_api_service import ApiGetKernelRequest

        request = ApiGetKernelRequest()
        request.user_name, request.kernel_slug = owner, slug
        return self.lookup(
            f"looking up the kernel {owner}/{slug}",
            lambda c: c.kernels.kernels_api_client.get_kernel(request),
        )

    def status(self, owner: str, slug: str) -> tuple[str, str]:
        """The latest run's status name (QUEUED, RUNNING, COMPLETE, ERROR, ...) and failure."""
        from kagglesdk.kernels.types.kernels_api_service import ApiGetKernelSessionStatusRequest

        request = ApiGetKernelSessionStatusRequest()
        request.user_name, request.kernel_slug = owner, slug
        answer = self.call(
            f"reading the status of the kernel {owner}/{slug}",
            lambda c: c.kernels.kernels_api_client.get_kernel_session_status(request),
        )
        return answer.status.name, self.masker.mask(answer.failure_message or "")

    def output(
        self, owner: str, slug: str, *, files: bool = True
    ) -> tuple[list[tuple[str, str]], str]:
        """The latest run's output files as (name, download URL), and its log (as Kaggle
        stores it: a JSON list of stream events); ``files=False`` reads the log only."""
        from kagglesdk.kernels.types.kernels_api_service import ApiListKernelSessionOutputRequest

        found: list[tuple[str, str]] = []
        log, token = "", None
        while True:
            request = ApiListKernelSessionOutputRequest()
            request.user_name, request.kernel_slug = owner, slug
            request.page_size, request.page_token = (100 if files else 1), token

            def page(client: Any, r: Any = request) -> Any:
                return client.kernels.kernels_api_client.list_kernel_session_output(r)

            answer = self.call(f"listing the output of the kernel {owner}/{slug}", page)
            found += [(f.file_name, f.url) for f in answer.files or [] if f.file_name and f.url]
            log = log or answer.log or ""
            token = answer.next_page_token
            if not token or not files:
                return found, log

    def gpu_quota_left(self) -> tuple[float, float, datetime | None]:
        """Hours of weekly GPU quota left, the week's total, and when it refreshes."""
        from kagglesdk.kernels.types.kernels_api_service import (
            ApiGetAcceleratorQuotaStatisticsRequest,
        )

        answer = self.call(
            "reading the GPU quota",
            lambda c: c.kernels.kernels_api_client.get_accelerator_quota_statistics(
                ApiGetAcceleratorQuotaStatisticsRequest()
            ),
        )
        quota = answer.gpu_quota
        if quota is None:
            return float("inf"), float("inf"), None
        total = quota.total_time_allowed.total_seconds() / 3600 if quota.total_time_allowed else 0
        used = sum(t.total_seconds() / 3600 for t in (quota.time_used, quota.time_reserved) if t)
        refresh = answer.quota_refresh_time
        return total - used, total, refresh.astimezone(UTC) if refresh else None
