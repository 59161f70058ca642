"""A fake Kaggle API speaking kagglesdk's wire format: POST /v1/<service>/<method> with a JSON
body, JSON answers with camelCase fields, errors as {"code", "message"}, downloads as a 302 to
a storage URL (as api.kaggle.com does to Google Cloud Storage)."""

from __future__ import annotations

import base64
import io
import time
import zipfile
from dataclasses import dataclass, field

from fakes.base import FakeServer, Request, Response

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
            "currentVersionNumber": 2,
            "files": [],
            "tags": [{"ref": "tabular", "name": "tabular"}],
            **self.extra,
        }


class FakeKaggle(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.datasets: dict[str, FakeDataset] = {}
        self.competitions: dict[str, dict[str, bytes]] = {}
        self.rules_accepted: set[str] = set()
        self.stall_s = 0.0  # answer API calls this late (to test client timeouts)

    def add(self, dataset: FakeDataset) -> FakeDataset:
        self.datasets[dataset.ref] = dataset
        return dataset

    def _authorised(self, request: Request) -> bool:
        expected = base64.b64encode(f"{USERNAME}:{KEY}".encode()).decode()
        return request.headers.get("authorization") in (
            f"Basic {expected}",
            f"Bearer {API_TOKEN}",
        )

    def handle(self, request: Request) -> Response:
        time.sleep(self.stall_s)
        if request.path.startswith("/storage/"):
            return self._storage(request.path.removeprefix("/storage/"))
        if not self._authorised(request):
            return Response.json({"code": 401, "message": "Unauthenticated"}, 401)
        method = request.path.rsplit("/", 1)[-1]
        body = request.json()
        if method == "IntrospectToken":  # security.OAuthService: who a token belongs to
            active = body.get("token") == API_TOKEN
            return Response.json({"active": active, "username": USERNAME if active else ""})
        if method == "ListDatasets":
            search = str(body.get("search", "")).lower()
            size = int(body.get("pageSize") or 20)
            hits = [d.api() for d in self.datasets.values() if search in d.title.lower()]
            return Response.json({"datasets": hits[:size], "nextPageToken": ""})
        if method in ("GetDataset", "DownloadDataset"):
            dataset = self.datasets.get(f"{body.get('ownerSlug')}/{body.get('datasetSlug')}")
            if dataset is None:
                return Response.json({"code": 404, "message": "Dataset not found"}, 404)
            if method == "GetDataset":
                return Response.json(dataset.api())
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
