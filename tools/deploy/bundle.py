"""The files a deployment uploads, built in memory from the model folder.

The model repository gets the model and what it needs to run (model.skops, meta.json,
predict.py, requirements.txt pinned to the versions it was trained with), its evaluation
(metrics.json, the plots), its provenance (manifest.json, with local paths reduced to file
names) and the card. Text is masked with the server's masker before it leaves.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from mltrainer.state.masking import Masker
from mltrainer.tools.deploy.dataset_ref import public_name
from mltrainer.tools.deploy.folder import (
    MANIFEST_FILE,
    META_FILE,
    METRICS_FILE,
    MODEL_FILE,
    PREDICT_FILE,
    ModelFolder,
)
from mltrainer.tools.deploy.models import DeployedFile

REQUIREMENTS_FILE = "requirements.txt"
# What predict.py and skops need, in the order pip reads them; xgboost only for models using it.
RUNTIME_PACKAGES = ("numpy", "pandas", "scipy", "scikit-learn", "skops")


@dataclass(frozen=True)
class BundleFile:
    """One file to upload, with the two hashes the Hub's file listing can be compared with."""

    path: str
    data: bytes

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @cached_property
    def git_blob_id(self) -> str:
        """The id git gives this content: what the Hub lists for a file not stored in LFS."""
        header = f"blob {len(self.data)}\0".encode()
        return hashlib.sha1(header + self.data, usedforsecurity=False).hexdigest()

    def describe(self, changed: bool) -> DeployedFile:
        return DeployedFile(
            path=self.path, bytes=len(self.data), sha256=self.sha256, changed=changed
        )


def text_file(path: str, text: str, masker: Masker) -> BundleFile:
    return BundleFile(path=path, data=masker.mask(text).encode("utf-8"))


def model_files(folder: ModelFolder, card_text: str, masker: Masker) -> list[BundleFile]:
    """Everything the model repository holds, in a stable order."""
    raw = [MODEL_FILE, META_FILE, PREDICT_FILE, METRICS_FILE]
    files = [BundleFile(path=name, data=(folder.path / name).read_bytes()) for name in raw]
    files.append(text_file(MANIFEST_FILE, public_manifest(folder), masker))
    files.append(text_file(REQUIREMENTS_FILE, requirements(folder), masker))
    files += [BundleFile(path=plot.name, data=plot.read_bytes()) for plot in folder.plots()]
    files.append(text_file("README.md", card_text, masker))
    return files


def public_manifest(folder: ModelFolder) -> str:
    """manifest.json as published: the data's local paths reduced to their file names."""
    manifest = json.loads((folder.path / MANIFEST_FILE).read_text(encoding="utf-8"))
    for part, keys in (("request", ("dataset", "dataset_ref")), ("data", ("path", "ref"))):
        fields = manifest.get(part)
        for key in keys:
            if isinstance(fields, dict) and isinstance(fields.get(key), str):
                fields[key] = public_name(fields[key])
    return json.dumps(manifest, indent=2) + "\n"


def pinned_versions(folder: ModelFolder, extra: Iterable[str] = ()) -> list[str]:
    versions = folder.library_versions
    wanted = [*RUNTIME_PACKAGES, *(["xgboost"] if uses_xgboost(folder) else []), *extra]
    return [f"{name}=={versions[name]}" if name in versions else name for name in wanted]


def requirements(folder: ModelFolder) -> str:
    lines = pinned_versions(folder)
    return "# The versions this model was trained with.\n" + "\n".join(lines) + "\n"


def uses_xgboost(folder: ModelFolder) -> bool:
    return any("xgb" in name.lower() for name in folder.meta.trusted_types)
