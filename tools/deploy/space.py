"""The files of a Gradio Space that serves a deployed model.

``app.py`` is the package's template as it is (a linted Python file, no text substitution):
everything specific to the model is in ``schema.json`` beside it — the model repository and
commit to download, the title, and one field per feature. The Space's README carries the
metadata the Hub runs it by (sdk, sdk_version, python_version, app_file) and links the model.
"""

from __future__ import annotations

import json
import sys

from mltrainer.state.masking import Masker
from mltrainer.tools.deploy.bundle import REQUIREMENTS_FILE, BundleFile, pinned_versions, text_file
from mltrainer.tools.deploy.card import TEMPLATES, plain
from mltrainer.tools.deploy.folder import ModelFolder
from mltrainer.tools.deploy.schema import InputSchema

APP_FILE = "app.py"
SCHEMA_FILE = "schema.json"
APP_TEMPLATE = "space_app.py"
# The Gradio release the app is tested with; the Hub installs it from the README's sdk_version.
GRADIO_VERSION = "6.31.0"
SPACE_SUFFIX = "-demo"


def space_id_for(repo_id: str) -> str:
    return repo_id + SPACE_SUFFIX


def space_files(
    folder: ModelFolder,
    schema: InputSchema,
    *,
    model_repo: str,
    revision: str | None,
    private: bool,
    masker: Masker,
) -> list[BundleFile]:
    target = folder.meta.target
    title = f"{folder.meta.model_id}: {folder.meta.task}" + (f" of {target}" if target else "")
    described = {
        "model_repo": model_repo,
        "revision": revision,
        "title": title,
        "description": (
            f"Predictions of the model [{model_repo}](https://huggingface.co/{model_repo}), "
            "trained by mltrainer. Fill in one row, or upload a CSV file with the input columns."
        ),
        "task": folder.meta.task,
        "target": folder.meta.target,
        "classes": folder.meta.classes or [],
        "fields": [field.model_dump(mode="json") for field in schema.fields],
    }
    return [
        BundleFile(path=APP_FILE, data=(TEMPLATES / APP_TEMPLATE).read_bytes()),
        text_file(SCHEMA_FILE, json.dumps(described, indent=2) + "\n", masker),
        text_file(REQUIREMENTS_FILE, space_requirements(folder), masker),
        text_file("README.md", space_readme(folder, title, model_repo, private), masker),
    ]


def space_requirements(folder: ModelFolder) -> str:
    lines = pinned_versions(folder, extra=("huggingface_hub",))
    return (
        "# The model's libraries at the versions it was trained with; Gradio comes from the "
        "README's sdk_version.\n" + "\n".join(lines) + "\n"
    )


def space_readme(folder: ModelFolder, title: str, model_repo: str, private: bool) -> str:
    from huggingface_hub import SpaceCard, SpaceCardData

    data = SpaceCardData(
        title=title[:60],
        sdk="gradio",
        sdk_version=GRADIO_VERSION,
        python_version=f"{sys.version_info.major}.{sys.version_info.minor}",
        app_file=APP_FILE,
        models=[model_repo],
        tags=["mltrainer", "tabular", folder.meta.task],
        emoji="📈",
        colorFrom="blue",
        colorTo="green",
        pinned=False,
    )
    secret = (
        "\n\nThe model repository is private: add a read-only token as the Space secret "
        "`HF_TOKEN` (Settings → Variables and secrets) so the app can download the model.\n"
        if private
        else "\n"
    )
    body = (
        f"# {plain(title)}\n\nA form and a CSV upload that serve the predictions of "
        f"[{model_repo}](https://huggingface.co/{model_repo}), deployed by mltrainer."
    )
    # Values go in as variables, never into the template's text: a column name is not Jinja.
    template = "---\n{{ card_data }}\n---\n\n{{ body }}{{ secret }}"
    return str(SpaceCard.from_template(data, template_str=template, body=body, secret=secret))
