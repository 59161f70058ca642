"""A fake Kaggle API speaking kagglesdk's wire format: POST /v1/<service>/<method> with a JSON
body, JSON answers with camelCase fields, errors as {"code", "message"}, downloads as a 302 to
a storage URL (as api.kaggle.com does to Google Cloud Storage).

Kernels and private datasets (fakes.kaggle_kernels, mixed in): blob uploads (StartBlobUpload,
then a PUT of the bytes to /storage/upload/TOKEN), CreateDataset, CreateDatasetVersion,
GetDatasetStatus, SaveKernel (what ``kaggle kernels push`` sends), GetKernel,
GetKernelSessionStatus, ListKernelSessionOutput (files and the log), GetAcceleratorQuotaStatistics.
With ``run_kernels`` a pushed kernel really runs: its script in a subprocess, in a folder laid
out like /kaggle (input/<slug> holds the mounted data), and /kaggle/working becomes its output.
"""

from __future__ import annotations

import base64
import io
import time
import zipfile
from dataclasses import dataclass, field

from fakes.base import FakeServer, Request, Response
from fakes.kaggle_kernels import KernelsMixin

USERNAME, KEY = "fakeuser", "fake-kaggle-key-0123456789"
API_TOKEN = "KGAT_fake_access_token_0123456789"  # a Kaggle API token, sent as a Bearer token


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


@dataclass
class FakeDataset:
    owner: str
    slug: str
    title: str
    files: dict[str, bytes]
    licence: str = "CC0-1.0"
    votes: int = 10
    downloads: int = 100
    raw_zip: bytes | None = None  # serve these bytes instead of a zip of ``files``
    extra: dict[str, object] = field(default_factory=dict)
    # Datasets created through the API (private ones): description, versions, processing.
    description: str | None = None
    versions: list[dict[str, object]] = field(default_factory=list)
    private: bool = False
    pending_polls: int = 0  # GetDatasetStatus answers not READY this many more times

    @property
    def ref(self) -> str:
        return f"{self.owner}/{self.slug}"

    def archive(self) -> bytes:
        return self.raw_zip if self.raw_zip is not None else zip_bytes(self.files)

    def api(self) -> dict[str, object]:
        return {
            "id": abs(hash(self.ref)) % 10**6,
            "ref": self.ref,
            "title": self.title,
            "subtitle": f"About {self.title}",
            "totalBytes": sum(len(b) for b in self.files.values()),
            "url": f"https://www.kaggle.com/datasets/{self.ref}",
            "lastUpdated": "2025-03-04T05:06:07Z",
            "downloadCount": self.downloads,
            "voteCount": self.votes,
            "licenseName": self.licence,
            "currentVersionNumber": len(self.versions) or 2,
            "files": [],
            "tags": [{"ref": "tabular", "name": "tabular"}],
            "isPrivate": self.private,
            **({"description": self.description} if self.description is not None else {}),
            **({"versions": self.versions} if self.versions else {}),
            **self.extra,
        }


class FakeKaggle(KernelsMixin, FakeServer):
    def __init__(self, key: str = KEY, token: str = API_TOKEN) -> None:
        super().__init__()
        self.key, self.token = key, token  # the credentials it accepts (a test plants a canary)
        self.datasets: dict[str, FakeDataset] = {}
        self.competitions: dict[str, dict[str, bytes]] = {}
        self.rules_accepted: set[str] = set()
        self.stall_s = 0.0  # answer API calls this late (to test client timeouts)
        self.init_kernels()

    def add(self, dataset: FakeDataset) -> FakeDataset:
        self.datasets[dataset.ref] = dataset
        return dataset

    def _authorised(self, request: Request) -> bool:
        expected = base64.b64encode(f"{USERNAME}:{self.key}".encode()).decode()
        return request.headers.get("authorization") in (
            f"Basic {expected}",
            f"Bearer {self.token}",
        )

    def handle(self, request: Request) -> Response:
        time.sleep(self.stall_s)
        if request.path.startswith("/storage/"):
            path = request.path.removeprefix("/storage/")
            if path.startswith(("upload/", "kernels/")):
                return self.kernels_storage(request, path)
            return self._storage(path)
        if not self._authorised(request):
            return Response.json({"code": 401, "message": "Unauthenticated"}, 401)
        method = request.path.rsplit("/", 1)[-1]
        body = request.json()
        if method in self.KERNEL_METHODS:
            return self.kernels_api(method, body)
        if method == "IntrospectToken":  # security.OAuthService: who a token belongs to
            active = body.get("token") == self.token
            return Response.json({"active": active, "username": USERNAME if active else ""})
        if method == "ListDatasets":
            search = str(body.get("search", "")).lower()
            size = int(body.get("pageSize") or 20)
            hits = [d.api() for d in self.datasets.values() if search in d.title.lower()]
            return Response.json({"datasets": hits[:size], "nextPageToken": ""})
        if method in ("GetDataset", "DownloadDataset", "GetDatasetStatus"):
            dataset = self.datasets.get(f"{body.get('ownerSlug')}/{body.get('datasetSlug')}")
            if dataset is None:
                return Response.json({"code": 404, "message": "Dataset not found"}, 404)
            if method == "GetDataset":
                return Response.json(dataset.api())
            if method == "GetDatasetStatus":
                ready = dataset.pending_polls <= 0
                dataset.pending_polls -= 1
                return Response.json({"status": "READY" if ready else "BLOBS_RECEIVED"})
            name = body.get("fileName")
            if name and name not in dataset.files:
                return Response.json({"code": 404, "message": "File not found"}, 404)
            target = f"{dataset.ref}/{name}" if name else f"{dataset.ref}.zip"
            return Response(302, headers={"Location": f"{self.url}/storage/{target}"})
        if method in ("DownloadDataFiles", "DownloadDataFile"):
            slug = str(body.get("competitionName"))
            if slug not in self.competitions:
                return Response.json({"code": 404, "message": "Competition not found"}, 404)
            if slug not in self.rules_accepted:
                return Response.json(
                    {"code": 403, "message": "You must accept this competition's rules"}, 403
                )
            name = body.get("fileName")
            target = f"competitions/{slug}/{name}" if name else f"competitions/{slug}.zip"
            return Response(302, headers={"Location": f"{self.url}/storage/{target}"})
        return Response.json({"code": 404, "message": f"no method {method}"}, 404)

    def _storage(self, path: str) -> Response:
        if path.startswith("competitions/"):
            slug, _, name = path.removeprefix("competitions/").partition("/")
            files = self.competitions[slug.removesuffix(".zip")]
            data = files[name] if name else zip_bytes(files)
            filename = name.rsplit("/", 1)[-1] if name else slug
        elif path.endswith(".zip") and path.count("/") == 1:
            dataset = self.datasets[path.removesuffix(".zip")]
            data, filename = dataset.archive(), f"{dataset.slug}.zip"
        else:
            owner, slug, name = path.split("/", 2)
            data, filename = self.datasets[f"{owner}/{slug}"].files[name], name.rsplit("/", 1)[-1]
        return Response(
            200,
            data,
            {
                "Content-Type": "application/octet-stream",
                "Content-Disposition": f'attachment; filename="{filename}"',
            },
        )
