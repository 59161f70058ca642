"""The writing side of the fake Hub: what huggingface_hub's HfApi calls to create a repository
and commit to it, answered the way the Hub answers, with its rules enforced.

Endpoints: GET /api/whoami-v2; POST /api/repos/create; GET /api/{models,spaces}/ID[/revision/R];
GET /api/{type}s/ID/tree/R; POST /api/{type}s/ID/preupload/R; POST /api/validate-yaml;
POST /[spaces/]ID.git/info/lfs/objects/batch, PUT /lfs-storage/OID, POST /lfs-verify/OID;
POST /api/{type}s/ID/commit/R (NDJSON); GET|HEAD /[spaces/]ID/resolve/R/FILE.

Tokens carry an account, a role (read, write, fineGrained) and organisation memberships, as
whoami-v2 reports them; creating or committing checks the token may write the namespace.
Binary files (a NUL byte or invalid UTF-8 in the sample) and files over 10 MB go through LFS.
``fail_paths`` answers an error status for requests whose path contains a given text.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import yaml

from fakes.base import Request, Response

if TYPE_CHECKING:
    from fakes.base import FakeServer

TOKEN = "hf_fake_token_abcdefghijklmnop"
ACCOUNT = "fakeuser"
LFS_THRESHOLD = 10 * 1024 * 1024
GITATTRIBUTES = (
    b"*.skops filter=lfs diff=lfs merge=lfs -text\n*.png filter=lfs diff=lfs merge=lfs -text\n"
)
REPO = re.compile(
    r"^/api/(models|spaces)/([^/]+/[^/]+)(?:/(tree|preupload|commit|revision)/([^/]+)(/.*)?)?$"
)


@dataclass
class FakeToken:
    account: str
    role: str = "write"  # read | write | fineGrained
    orgs: dict[str, str] = field(default_factory=dict)  # org -> roleInOrg
    scoped: dict[str, list[str]] = field(default_factory=dict)  # fine-grained permissions

    def whoami(self) -> dict[str, Any]:
        token: dict[str, Any] = {"displayName": "fake", "role": self.role}
        if self.role == "fineGrained":
            token["fineGrained"] = {
                "global": [],
                "scoped": [
                    {"entity": {"type": "user", "name": name}, "permissions": perms}
                    for name, perms in self.scoped.items()
                ],
            }
        return {
            "type": "user",
            "name": self.account,
            "orgs": [{"name": org, "roleInOrg": role} for org, role in self.orgs.items()],
            "auth": {"type": "access_token", "accessToken": token},
        }

    def can_write(self, repo_id: str) -> bool:
        namespace = repo_id.split("/")[0]
        if self.role == "read":
            return False
        if self.role == "fineGrained":
            return any("repo.write" in self.scoped.get(e, []) for e in (namespace, repo_id))
        return namespace == self.account or self.orgs.get(namespace) in ("admin", "write")

    def can_read(self, repo_id: str) -> bool:
        return self.can_write(repo_id) or repo_id.split("/")[0] in (self.account, *self.orgs)


@dataclass
class StoredFile:
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def blob_id(self) -> str:
        return hashlib.sha1(f"blob {len(self.data)}\0".encode() + self.data).hexdigest()

    def entry(self, path: str) -> dict[str, Any]:
        item: dict[str, Any] = {"type": "file", "path": path, "size": len(self.data)}
        item["oid"] = self.blob_id
        if self.lfs:
            item["lfs"] = {"oid": self.sha256, "size": len(self.data), "pointerSize": 134}
        return item


@dataclass
class Commit:
    sha: str
    message: str
    files: dict[str, StoredFile]


@dataclass
class HubRepo:
    repo_type: str  # model | space
    repo_id: str
    private: bool
    sdk: str | None = None
    commits: list[Commit] = field(default_factory=list)

    @property
    def head(self) -> Commit:
        return self.commits[-1]

    def commit(self, message: str, files: dict[str, StoredFile]) -> Commit:
        listing = json.dumps({p: f.sha256 for p, f in sorted(files.items())})
        sha = hashlib.sha1(f"{len(self.commits)}:{message}:{listing}".encode()).hexdigest()
        self.commits.append(Commit(sha, message, files))
        return self.head


def _error(status: int, message: str, code: str | None = None) -> Response:
    headers = {"X-Error-Message": message, **({"X-Error-Code": code} if code else {})}
    return Response.json({"error": message}, status, **headers)


class HubWriter:
    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.tokens: dict[str, FakeToken] = {TOKEN: FakeToken(ACCOUNT)}
        self.repos: dict[tuple[str, str], HubRepo] = {}
        self.lfs: dict[str, bytes] = {}  # sha256 -> content
        self.fail_paths: dict[str, int] = {}
        # LFS uploads are PUTs, which the shared fake server does not route by default.
        handler = server.httpd.RequestHandlerClass
        handler.do_PUT = handler._serve  # type: ignore[attr-defined]

    # -- helpers for tests ------------------------------------------------------------------
    def repo(self, repo_id: str, repo_type: str = "model") -> HubRepo:
        return self.repos[(repo_type, repo_id)]

    def commits(self, repo_id: str, repo_type: str = "model") -> list[Commit]:
        return self.repo(repo_id, repo_type).commits

    # -- routing ----------------------------------------------------------------------------
    def token(self, request: Request) -> FakeToken | None:
        auth = request.headers.get("authorization", "")
        return self.tokens.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None

    def handle(self, request: Request) -> Response:
        path = request.path
        for fragment, status in self.fail_paths.items():
            if fragment in path:
                return _error(status, f"fake {status}")
        if path == "/api/whoami-v2":
            token = self.token(request)
            return Response.json(token.whoami()) if token else _error(401, "Invalid credentials")
        if path == "/api/repos/create" and request.method == "POST":
            return self.create(request)
        if path == "/api/validate-yaml":
            return self.validate_yaml(request)
        if path.endswith(".git/info/lfs/objects/batch"):
            return self.lfs_batch(request)
        if path.startswith("/lfs-storage/") and request.method == "PUT":
            return self.lfs_store(path.removeprefix("/lfs-storage/"), request.body)
        if path.startswith("/lfs-verify/"):
            known = path.removeprefix("/lfs-verify/") in self.lfs
            return Response.json({}) if known else _error(404, "Object not found")
        if match := REPO.match(path):
            return self.api(request, match)
        if "/resolve/" in path:
            return self.resolve(request)
        return _error(404, "not found")

    def find(
        self, repo_type: str, repo_id: str, request: Request, write: bool = False
    ) -> HubRepo | Response:
        repo = self.repos.get((repo_type, repo_id))
        token = self.token(request)
        if repo is None or (repo.private and not (token and token.can_read(repo_id))):
            return _error(404, "Repository not found", "RepoNotFound")
        if write and not (token and token.can_write(repo_id)):
            return _error(403, f"You don't have the rights to write to {repo_id}")
        return repo

    # -- repositories -----------------------------------------------------------------------
    def create(self, request: Request) -> Response:
        token = self.token(request)
        if token is None:
            return _error(401, "Invalid credentials")
        body = request.json()
        repo_type = body.get("type") or "model"
        repo_id = f"{body.get('organization') or token.account}/{body['name']}"
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        url = f"{self.server.url}/{prefix}{repo_id}"
        if (repo_type, repo_id) in self.repos:
            return Response.json({"error": "You already created this repo", "url": url}, 409)
        if not token.can_write(repo_id):
            return _error(403, f"You don't have the rights to create a {repo_type} under {repo_id}")
        if repo_type == "space" and not body.get("sdk"):
            return _error(400, "sdk is required for a Space")
        repo = HubRepo(repo_type, repo_id, body.get("visibility") == "private", body.get("sdk"))
        repo.commit("initial commit", {".gitattributes": StoredFile(GITATTRIBUTES, lfs=False)})
        self.repos[(repo_type, repo_id)] = repo
        return Response.json({"url": url, "name": repo_id})

    def api(self, request: Request, match: re.Match[str]) -> Response:
        repo_type, repo_id, action, revision = match[1][:-1], match[2], match[3], match[4]
        found = self.find(repo_type, repo_id, request, write=action in ("preupload", "commit"))
        if isinstance(found, Response):
            return found
        if revision and unquote(revision) not in ("main", found.head.sha):
            return _error(404, "Invalid rev id", "RevisionNotFound")
        if action == "tree":
            return Response.json([f.entry(p) for p, f in sorted(found.head.files.items())])
        if action == "preupload":
            return self.preupload(found, request.json())
        if action == "commit":
            return self.commit(found, request.body)
        return Response.json(self.info(found))

    def info(self, repo: HubRepo) -> dict[str, Any]:
        return {
            "_id": "0" * 24,
            "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": repo.head.sha,
            "lastModified": "2025-01-02T03:04:05.000Z",
            "private": repo.private,
            "disabled": False,
            "sdk": repo.sdk,
            "siblings": [{"rfilename": p} for p in sorted(repo.head.files)],
        }

    # -- uploads ----------------------------------------------------------------------------
    def preupload(self, repo: HubRepo, body: dict[str, Any]) -> Response:
        answers = []
        for item in body.get("files", []):
            sample = base64.b64decode(item["sample"])
            lfs = item["size"] > LFS_THRESHOLD or not _is_text(sample)
            held = repo.head.files.get(item["path"])
            oid = (held.sha256 if held.lfs else held.blob_id) if held else None
            answers.append(
                {
                    "path": item["path"],
                    "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": False,
                    "oid": oid,
                }
            )
        return Response.json({"files": answers, "commitOid": repo.head.sha})

    def lfs_batch(self, request: Request) -> Response:
        token = self.token(request)
        match = re.match(r"^/(spaces/)?(.+/.+)\.git/info/lfs/objects/batch$", request.path)
        if token is None or match is None or not token.can_write(match[2]):
            return _error(403, "Forbidden")
        objects = []
        for item in request.json().get("objects", []):
            answer: dict[str, Any] = {"oid": item["oid"], "size": item["size"]}
            if item["oid"] not in self.lfs:
                answer["actions"] = {
                    "upload": {"href": f"{self.server.url}/lfs-storage/{item['oid']}"},
                    "verify": {"href": f"{self.server.url}/lfs-verify/{item['oid']}"},
                }
            objects.append(answer)
        return Response.json({"transfer": "basic", "objects": objects})

    def lfs_store(self, oid: str, data: bytes) -> Response:
        if hashlib.sha256(data).hexdigest() != oid:
            return _error(400, "The content does not match its oid")
        self.lfs[oid] = data
        return Response()

    def commit(self, repo: HubRepo, body: bytes) -> Response:
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        header = lines[0]["value"] if lines and lines[0]["key"] == "header" else {}
        parent = header.get("parentCommit")
        if parent and parent != repo.head.sha:
            return _error(412, "A commit has happened since. Please refresh and try again.")
        files = dict(repo.head.files)
        for line in lines[1:]:
            value = line["value"]
            if line["key"] == "file":
                files[value["path"]] = StoredFile(base64.b64decode(value["content"]), lfs=False)
            elif line["key"] == "lfsFile":
                data = self.lfs.get(value["oid"])
                if data is None or len(data) != value["size"]:
                    return _error(422, f"LFS object {value['oid']} was not uploaded")
                files[value["path"]] = StoredFile(data, lfs=True)
            elif line["key"] == "deletedFile" and files.pop(value["path"], None) is None:
                return _error(404, "A file with this name doesn't exist", "EntryNotFound")
        commit = repo.commit(header.get("summary", ""), files)
        prefix = "" if repo.repo_type == "model" else "spaces/"
        url = f"{self.server.url}/{prefix}{repo.repo_id}/commit/{commit.sha}"
        return Response.json({"commitUrl": url, "commitOid": commit.sha, "pullRequestUrl": None})

    def validate_yaml(self, request: Request) -> Response:
        content = str(request.json().get("content", ""))
        match = re.match(r"^---\n(.*?)\n---\n", content, re.S)
        try:
            data = yaml.safe_load(match[1]) if match else {}
        except yaml.YAMLError as exc:
            return Response.json({"errors": [{"message": str(exc)}]}, 400)
        if not isinstance(data, dict):
            return Response.json({"errors": [{"message": "metadata must be a mapping"}]}, 400)
        return Response.json({"errors": [], "warnings": []})

    # -- downloads --------------------------------------------------------------------------
    def resolve(self, request: Request) -> Response:
        path = request.path.removeprefix("/")
        repo_type = "space" if path.startswith("spaces/") else "model"
        repo_id, _, rest = path.removeprefix("spaces/").partition("/resolve/")
        revision, _, filename = rest.partition("/")
        found = self.find(repo_type, repo_id, request)
        if isinstance(found, Response):
            return found
        commit = next((c for c in found.commits if c.sha == revision), None)
        commit = commit or (found.head if revision == "main" else None)
        stored = commit.files.get(unquote(filename)) if commit else None
        if commit is None or stored is None:
            return _error(404, "Entry not found", "EntryNotFound")
        etag = stored.sha256 if stored.lfs else stored.blob_id
        return Response(
            200,
            stored.data,
            {
                "Content-Type": "application/octet-stream",
                "ETag": f'"{etag}"',
                "X-Repo-Commit": commit.sha,
            },
        )


def _is_text(sample: bytes) -> bool:
    if b"\0" in sample:
        return False
    try:  # the sample may end inside a character: decode it as the start of a stream
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return False
    return True
