"""The kernels and private-dataset half of the fake Kaggle API (mixed into fakes.kaggle.FakeKaggle).

What each method answers follows kagglesdk's request and response types
(kagglesdk/kernels/types/kernels_api_service.py, datasets/..., blobs/...). Kaggle answers some
refusals with HTTP 200 and an error text or a list of invalid sources, and so does this fake.

A test drives a kernel by hand (``kernel.status``, ``.log``, ``.outputs``) or sets
``run_kernels`` so that each push runs the pushed script for real (see ``_run``) and the
kernel goes QUEUED → RUNNING → COMPLETE or ERROR with its real log and output files.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fakes.base import Request, Response

if TYPE_CHECKING:
    from fakes.kaggle import FakeDataset

RUN_TIMEOUT_S = 600


@dataclass
class FakeKernel:
    owner: str
    slug: str
    pushes: list[dict[str, Any]] = field(default_factory=list)  # SaveKernel bodies, in order
    status: str = "QUEUED"
    failure: str = ""
    log: list[dict[str, Any]] = field(default_factory=list)  # {stream_name, time, data} events
    outputs: dict[str, bytes] = field(default_factory=dict)  # path under /kaggle/working
    started: threading.Event = field(default_factory=threading.Event)  # a held run may start
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def ref(self) -> str:
        return f"{self.owner}/{self.slug}"

    @property
    def source(self) -> str:
        return str(self.pushes[-1].get("text", "")) if self.pushes else ""

    def say(self, text: str, stream: str = "stdout") -> None:
        self.log.append({"stream_name": stream, "time": float(len(self.log)), "data": text})


class KernelsMixin:
    KERNEL_METHODS = frozenset(
        {
            "StartBlobUpload",
            "CreateDataset",
            "CreateDatasetVersion",
            "SaveKernel",
            "GetKernel",
            "GetKernelSessionStatus",
            "ListKernelSessionOutput",
            "GetAcceleratorQuotaStatistics",
        }
    )
    url: str
    datasets: dict[str, FakeDataset]
    competitions: dict[str, dict[str, bytes]]
    rules_accepted: set[str]

    def init_kernels(self) -> None:
        self.kernels: dict[str, FakeKernel] = {}
        self.blobs: dict[str, tuple[str, bytes | None]] = {}  # token -> (file name, bytes)
        self.run_kernels = False  # run each pushed script for real ...
        self.hold_runs = False  # ... once the test sets kernel.started (QUEUED until then)
        self.dataset_ready_after = 0  # GetDatasetStatus answers "not ready" this many times
        self.private_quota_bytes = 10**9  # CreateDataset[Version] refuses more, as Kaggle does
        self.gpu_hours = (30.0, 0.0)  # the weekly GPU quota: (allowed, used)
        self.push_error = ""  # the error text of the next SaveKernel answer, once
        self.fail_method: dict[str, list[int]] = {}  # method -> statuses to answer first
        self.runs: list[threading.Thread] = []
        # Called with each kernel taken by a push, before the answer goes back (a test's
        # crash: the provider has the kernel, the pusher never hears of it).
        self.on_push: Callable[[FakeKernel], None] | None = None
        # Blob uploads are PUTs, which the shared fake server does not route by default.
        handler = self.httpd.RequestHandlerClass  # type: ignore[attr-defined]
        handler.do_PUT = handler._serve

    # -- routing ----------------------------------------------------------------------------
    def kernels_api(self, method: str, body: dict[str, Any]) -> Response:
        if self.fail_method.get(method):
            status = self.fail_method[method].pop(0)
            return Response.json({"code": status, "message": f"fake {status}"}, status)
        handler = getattr(self, f"_api_{method}")
        answer: Response = handler(body)
        return answer

    def kernels_storage(self, request: Request, path: str) -> Response:
        if path.startswith("upload/") and request.method == "PUT":
            token = path.removeprefix("upload/")
            if token not in self.blobs:
                return Response(404)
            self.blobs[token] = (self.blobs[token][0], request.body)
            return Response.json({})
        owner, slug, name = path.removeprefix("kernels/").split("/", 2)
        kernel = self.kernels.get(f"{owner}/{slug}")
        if kernel is None or name not in kernel.outputs:
            return Response(404)
        return Response(200, kernel.outputs[name], {"Content-Type": "application/octet-stream"})

    # -- uploads and private datasets -------------------------------------------------------
    def _api_StartBlobUpload(self, body: dict[str, Any]) -> Response:
        token = f"blob{len(self.blobs) + 1}"
        self.blobs[token] = (str(body.get("name")), None)
        return Response.json({"token": token, "createUrl": f"{self.url}/storage/upload/{token}"})

    def _files(self, new_files: list[dict[str, Any]]) -> dict[str, bytes] | str:
        """The files a create/version request names by token (a zip is unpacked into a
        folder of its name, as Kaggle does), or the error Kaggle would answer."""
        files: dict[str, bytes] = {}
        for item in new_files:
            name, data = self.blobs.get(str(item.get("token")), ("", None))
            if data is None:
                return f"Upload token {item.get('token')} was never completed"
            if name.endswith(".zip"):
                with zipfile.ZipFile(io.BytesIO(data)) as archive:
                    for member in archive.namelist():
                        files[f"{name.removesuffix('.zip')}/{member}"] = archive.read(member)
            else:
                files[name] = data
        if sum(len(b) for b in files.values()) > self.private_quota_bytes:
            return "Your private datasets quota is exceeded: this version is too large"
        return files

    def _api_CreateDataset(self, body: dict[str, Any]) -> Response:
        from fakes.kaggle import USERNAME, FakeDataset

        owner, slug = body.get("ownerSlug"), str(body.get("slug"))
        if owner != USERNAME:
            return Response.json({"code": 403, "message": "Permission denied"}, 403)
        if f"{owner}/{slug}" in self.datasets:
            return Response.json({"status": "error", "error": f'The slug "{slug}" is in use'})
        files = self._files(body.get("files") or [])
        if isinstance(files, str):
            return Response.json({"status": "error", "error": files})
        dataset = FakeDataset(owner, slug, str(body.get("title")), files)
        dataset.description, dataset.private = str(body.get("description", "")), True
        dataset.versions = [{"versionNumber": 1, "versionNotes": "", "status": "ready"}]
        dataset.pending_polls = self.dataset_ready_after
        self.add(dataset)  # type: ignore[attr-defined]
        return Response.json(
            {"ref": dataset.ref, "url": f"/datasets/{dataset.ref}", "status": "ok"}
        )

    def _api_CreateDatasetVersion(self, body: dict[str, Any]) -> Response:
        dataset = self.datasets.get(f"{body.get('ownerSlug')}/{body.get('datasetSlug')}")
        if dataset is None:
            return Response.json({"code": 404, "message": "Dataset not found"}, 404)
        request = body.get("body") or {}
        files = self._files(request.get("files") or [])
        if isinstance(files, str):
            return Response.json({"status": "error", "error": files})
        dataset.files = files
        number = len(dataset.versions) + 1
        notes = str(request.get("versionNotes", ""))
        dataset.versions.append({"versionNumber": number, "versionNotes": notes, "status": "ready"})
        dataset.pending_polls = self.dataset_ready_after
        return Response.json({"ref": dataset.ref, "status": "ok"})

    # -- kernels ----------------------------------------------------------------------------
    def _kernel(self, body: dict[str, Any]) -> FakeKernel | None:
        return self.kernels.get(f"{body.get('userName')}/{body.get('kernelSlug')}")

    def _api_SaveKernel(self, body: dict[str, Any]) -> Response:
        from fakes.kaggle import USERNAME

        owner, _, slug = str(body.get("slug")).partition("/")
        if owner != USERNAME:
            return Response.json({"code": 403, "message": "Permission denied"}, 403)
        invalid = {
            "invalidCompetitionSources": [
                c
                for c in body.get("competitionDataSources") or []
                if c not in self.competitions or c not in self.rules_accepted
            ],
            "invalidDatasetSources": [
                d
                for d in body.get("datasetDataSources") or []
                if "/".join(d.split("/")[:2]) not in self.datasets
            ],
        }
        error, self.push_error = self.push_error, ""
        if error or any(invalid.values()):
            return Response.json({"ref": "", "url": "", "error": error, **invalid})
        kernel = self.kernels.setdefault(f"{owner}/{slug}", FakeKernel(owner, slug))
        kernel.pushes.append(body)
        kernel.status, kernel.failure, kernel.log, kernel.outputs = "QUEUED", "", [], {}
        kernel.started, kernel.finished = threading.Event(), threading.Event()
        if not self.hold_runs:
            kernel.started.set()
        if self.run_kernels:
            run = threading.Thread(target=self._run, args=(kernel, body), daemon=True)
            self.runs.append(run)
            run.start()
        if self.on_push is not None:
            self.on_push(kernel)
        return Response.json(
            {
                "ref": f"/code/{kernel.ref}",
                "url": f"https://www.kaggle.com/code/{kernel.ref}",
                "versionNumber": len(kernel.pushes),
                "kernelId": abs(hash(kernel.ref)) % 10**6,
            }
        )

    def _api_GetKernel(self, body: dict[str, Any]) -> Response:
        kernel = self._kernel(body)
        if kernel is None:
            return Response.json({"code": 404, "message": "Kernel not found"}, 404)
        last = kernel.pushes[-1]
        return Response.json(
            {
                "metadata": {"ref": kernel.ref, "slug": kernel.slug, "author": kernel.owner},
                "blob": {"source": kernel.source, "language": last.get("language")},
            }
        )

    def _api_GetKernelSessionStatus(self, body: dict[str, Any]) -> Response:
        kernel = self._kernel(body)
        if kernel is None:
            return Response.json({"code": 404, "message": "Kernel not found"}, 404)
        return Response.json({"status": kernel.status, "failureMessage": kernel.failure})

    def _api_ListKernelSessionOutput(self, body: dict[str, Any]) -> Response:
        kernel = self._kernel(body)
        if kernel is None:
            return Response.json({"code": 404, "message": "Kernel not found"}, 404)
        names = sorted(kernel.outputs)
        start, size = int(body.get("pageToken") or 0), int(body.get("pageSize") or 20)
        page = names[start : start + size]
        base = f"{self.url}/storage/kernels/{kernel.ref}"
        return Response.json(
            {
                "files": [{"fileName": name, "url": f"{base}/{name}"} for name in page],
                "log": json.dumps(kernel.log) if kernel.log else "",
                "nextPageToken": str(start + size) if start + size < len(names) else "",
            }
        )

    def _api_GetAcceleratorQuotaStatistics(self, body: dict[str, Any]) -> Response:
        allowed, used = self.gpu_hours
        return Response.json(
            {
                "quotaRefreshTime": "2026-12-05T00:00:00Z",
                "gpuQuota": {
                    "timeUsed": f"{int(used * 3600)}s",
                    "totalTimeAllowed": f"{int(allowed * 3600)}s",
                },
            }
        )

    # -- running a pushed kernel ------------------------------------------------------------
    def _run(self, kernel: FakeKernel, push: dict[str, Any]) -> None:
        """Run the pushed script as Kaggle would: data mounted under input/, the working
        directory kept as output, no credentials in the environment."""
        if not kernel.started.wait(RUN_TIMEOUT_S):
            return
        with tempfile.TemporaryDirectory(prefix="fake-kaggle-") as folder:
            root = Path(folder)
            for source in push.get("datasetDataSources") or []:
                owner, slug = source.split("/")[:2]
                self._mount(root / "input" / slug, self.datasets[f"{owner}/{slug}"].files)
            for slug in push.get("competitionDataSources") or []:
                self._mount(root / "input" / slug, self.competitions[slug])
            working = root / "working"
            working.mkdir()
            script = root / "script.py"
            script.write_text(str(push.get("text")), encoding="utf-8")
            env = {k: v for k, v in os.environ.items() if not k.startswith(("KAGGLE", "MLTRAINER"))}
            env["MLTRAINER_KAGGLE_ROOT"] = str(root)
            kernel.status = "RUNNING"
            done = subprocess.run(
                [sys.executable, str(script)],
                cwd=working,
                env=env,
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT_S,
            )
            for stream, text in (("stdout", done.stdout), ("stderr", done.stderr)):
                for line in text.splitlines(keepends=True):
                    kernel.say(line, stream)
            kernel.outputs = {
                path.relative_to(working).as_posix(): path.read_bytes()
                for path in sorted(working.rglob("*"))
                if path.is_file()
            }
            if done.returncode:
                last = done.stderr.strip().splitlines()[-1:] or ["exit status"]
                kernel.failure = f"Your notebook hit an unhandled error: {last[0]}"
            kernel.status = "ERROR" if done.returncode else "COMPLETE"
        kernel.finished.set()

    @staticmethod
    def _mount(target: Path, files: dict[str, bytes]) -> None:
        for name, data in files.items():
            path = target / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
