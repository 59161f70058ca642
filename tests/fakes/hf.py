"""A fake Hugging Face Hub: the JSON API (/api/datasets...) and the resolve endpoint with
the headers huggingface_hub needs (X-Repo-Commit, ETag, Content-Length), plus the Hub's
error headers (X-Error-Code: RepoNotFound / GatedRepo / EntryNotFound).

Model and Space repositories can also be written, the way huggingface_hub writes them
(see fakes.hub_write): whoami, repo creation, preupload, the LFS batch API with uploads to a
storage URL, NDJSON commits, repo info, file listing, and downloads of what was committed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from urllib.parse import unquote

from fakes.base import FakeServer, Request, Response
from fakes.hub_write import TOKEN, HubWriter


@dataclass
class FakeRepo:
    repo_id: str
    files: dict[str, bytes]
    licence: str = "mit"
    gated: bool = False
    private: bool = False
    downloads: int = 1234
    likes: int = 56
    lie_about_sizes: bool = False  # report 1-byte files in the metadata
    revisions: dict[str, dict[str, bytes]] = field(
        default_factory=dict
    )  # e.g. refs/convert/parquet

    def sha(self, revision: str) -> str:
        return hashlib.sha1(f"{self.repo_id}@{revision}".encode()).hexdigest()

    def tree(self, revision: str) -> dict[str, bytes] | None:
        if revision in ("main", self.sha("main")):
            return self.files
        for name, files in self.revisions.items():
            if revision in (name, self.sha(name)):
                return files
        return None

    def info(self, revision: str, files: dict[str, bytes]) -> dict[str, object]:
        return {
            "_id": "0" * 24,
            "id": self.repo_id,
            "author": self.repo_id.split("/")[0],
            "sha": self.sha(revision),
            "lastModified": "2025-01-02T03:04:05.000Z",
            "private": self.private,
            "gated": "auto" if self.gated else False,
            "disabled": False,
            "downloads": self.downloads,
            "likes": self.likes,
            "tags": [f"license:{self.licence}", "task_categories:tabular-classification"],
            "cardData": {"license": self.licence},
            "mainSize": sum(len(b) for b in self.files.values()),
            "siblings": [
                {
                    "rfilename": name,
                    "size": 1 if self.lie_about_sizes else len(data),
                    "blobId": hashlib.sha1(data).hexdigest(),
                }
                for name, data in files.items()
            ],
        }


class FakeHub(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.repos: dict[str, FakeRepo] = {}
        self.writer = HubWriter(self)

    def add(self, repo: FakeRepo) -> FakeRepo:
        self.repos[repo.repo_id] = repo
        return repo

    def _authorised(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {TOKEN}"

    def _repo(self, repo_id: str, request: Request) -> FakeRepo | Response:
        repo = self.repos.get(repo_id)
        if repo is None or (repo.private and not self._authorised(request)):
            return Response.json(
                {"error": "Repository not found"}, 401 if repo is None else 404,
                **{"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"},
            )  # fmt: skip
        return repo

    def handle(self, request: Request) -> Response:
        path = request.path
        if path == "/api/datasets":
            search = (request.query.get("search") or [""])[0].lower()
            limit = int((request.query.get("limit") or ["1000"])[0])
            hits = [r.info("main", {}) for r in self.repos.values() if search in r.repo_id.lower()]
            for hit in hits:
                hit.pop("siblings")
            return Response.json(hits[:limit])
        if path.startswith("/api/datasets/"):
            repo_id, _, revision = path.removeprefix("/api/datasets/").partition("/revision/")
            revision = revision or "main"
            found = self._repo(repo_id, request)
            if isinstance(found, Response):
                return found
            files = found.tree(unquote(revision))
            if files is None:
                return Response.json(
                    {"error": "Invalid rev id"}, 404, **{"X-Error-Code": "RevisionNotFound"}
                )
            return Response.json(found.info(unquote(revision), files))
        if path.startswith("/datasets/") and "/resolve/" in path:
            return self._resolve(request)
        return self.writer.handle(request)

    def _resolve(self, request: Request) -> Response:
        repo_id, _, rest = request.path.removeprefix("/datasets/").partition("/resolve/")
        revision, _, filename = rest.partition("/")
        found = self._repo(repo_id, request)
        if isinstance(found, Response):
            return found
        if found.gated and not self._authorised(request):
            return Response.json(
                {"error": "Access to this dataset is restricted"}, 403,
                **{"X-Error-Code": "GatedRepo", "X-Error-Message": "gated"},
            )  # fmt: skip
        files = found.tree(unquote(revision)) or {}
        data = files.get(unquote(filename))
        if data is None:
            return Response.json(
                {"error": "Entry not found"}, 404, **{"X-Error-Code": "EntryNotFound"}
            )
        return Response(
            200,
            data,
            {
                "Content-Type": "application/octet-stream",
                "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                "X-Repo-Commit": found.sha(unquote(revision)) if len(revision) != 40 else revision,
                "Accept-Ranges": "bytes",
            },
        )
