"""Deploying one saved model to the Hugging Face Hub: the model repository, and optionally a
Gradio Space that serves it.

Order matters: everything that can be checked without the network (the folder, the repository
ids, the secret reference's form, the card) is checked first; a dry run stops there, before the
token is even resolved. Then the token is checked with ``whoami`` for the right to write every
repository involved, before anything is created.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mltrainer.state.errors import NotFound
from mltrainer.state.masking import Masker
from mltrainer.state.secrets import SecretVault, parse_reference
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store
from mltrainer.tools.deploy import hub
from mltrainer.tools.deploy.bundle import BundleFile, model_files
from mltrainer.tools.deploy.card import build_card, fmt
from mltrainer.tools.deploy.dataset_ref import data_origin
from mltrainer.tools.deploy.folder import ModelFolder, read_folder
from mltrainer.tools.deploy.models import DeployOptions, DeployResult
from mltrainer.tools.deploy.push import PushResult, push
from mltrainer.tools.deploy.schema import input_schema
from mltrainer.tools.deploy.space import space_files, space_id_for

ProgressFn = Callable[[float, float | None, str], None]
STEPS = 3.0  # token check, model repository, Space


def deploy(
    path: Path,
    options: DeployOptions,
    *,
    token_ref: str,
    settings: Settings,
    vault: SecretVault,
    masker: Masker,
    store: Store | None = None,
    progress: ProgressFn | None = None,
) -> DeployResult:
    """Upload the model in ``path`` to ``options.repo_id`` (and its Space) in one commit each.

    ``store`` lets the card name the reference cached training data was downloaded by.
    """
    report = progress or (lambda done, total, message: None)
    folder = read_folder(path)
    dataset_ref = cached_dataset_ref(folder, settings, store) if store else None
    hub.check_repo_id(options.repo_id)
    space_id = (options.space_id or space_id_for(options.repo_id)) if options.space else None
    if space_id:
        hub.check_repo_id(space_id, "space_id")
    parse_reference(token_ref)  # a value pasted instead of a reference is refused even here
    card = str(build_card(folder, repo_id=options.repo_id, dataset_ref=dataset_ref))
    files = model_files(folder, card, masker)
    card_preview = _text(files, "README.md")
    if options.dry_run:
        return _dry_run(folder, options, space_id, files, card_preview, masker)

    report(0.0, STEPS, "Checking the token's right to write.")
    token = hub.hub_token(vault, token_ref, hub.endpoint(settings))
    api = hub.client(settings, token)
    hub.check_can_write(api, [options.repo_id, *([space_id] if space_id else [])], token_ref)
    report(1.0, STEPS, f"Deploying {folder.meta.model_id} to {options.repo_id}.")
    model = push(
        api,
        options.repo_id,
        "model",
        files,
        private=options.private,
        message=_message(folder),
        progress=lambda done, message: report(1.0 + done, STEPS, message),
    )
    result = DeployResult(
        repo_id=options.repo_id,
        repo_url=model.url,
        commit_sha=model.commit_sha,
        committed=model.committed,
        files=model.files,
        card_preview=card_preview,
        notes=_visibility_note(model, options.private, options.repo_id),
    )
    if space_id:
        space = push(
            api,
            space_id,
            "space",
            space_files(
                folder,
                input_schema(folder),
                model_repo=options.repo_id,
                revision=model.commit_sha,
                private=options.private,
                masker=masker,
            ),
            private=options.private,
            message=f"Serve {options.repo_id} at {str(model.commit_sha)[:12]}",
            progress=lambda done, message: report(2.0 + done, STEPS, message),
            space_sdk="gradio",
        )
        result = _with_space(result, space, space_id, options.private)
    report(STEPS, STEPS, "Deployed.")
    return result


def cached_dataset_ref(folder: ModelFolder, settings: Settings, store: Store) -> str | None:
    """The reference (e.g. 'hf:owner/name') of a download the training data came from."""
    data_path = folder.manifest.data.path
    if data_origin(folder.manifest.data.ref).kind != "local" or not data_path:
        return None  # the card names the reference already (or there is no file to look up)
    try:
        relative = Path(data_path).resolve().relative_to(settings.datasets_dir.resolve())
    except ValueError:
        return None  # not a cached download: a local file
    try:
        return store.get_dataset(relative.parts[0]).ref
    except NotFound:
        return None


def _dry_run(
    folder: ModelFolder,
    options: DeployOptions,
    space_id: str | None,
    files: list[BundleFile],
    card_preview: str,
    masker: Masker,
) -> DeployResult:
    space = (
        space_files(
            folder,
            input_schema(folder),
            model_repo=options.repo_id,
            revision=None,
            private=options.private,
            masker=masker,
        )
        if space_id
        else []
    )
    return DeployResult(
        repo_id=options.repo_id,
        repo_url=None,
        commit_sha=None,
        committed=False,
        files=[f.describe(changed=True) for f in files],
        space_id=space_id,
        space_files=[f.describe(changed=True) for f in space],
        card_preview=card_preview,
        dry_run=True,
        notes=["Dry run: nothing was sent to the Hub; call again with dry_run=false to deploy."],
    )


def _with_space(
    result: DeployResult, space: PushResult, space_id: str, private: bool
) -> DeployResult:
    notes = [*result.notes, *_visibility_note(space, private, space_id)]
    if private:
        notes.append(
            f"The model repository is private: add a read-only token as the secret HF_TOKEN in "
            f"the Space's settings ({space.url}/settings) so the app can download the model, or "
            "deploy with private=false."
        )
    return result.model_copy(
        update={
            "space_id": space_id,
            "space_url": space.url,
            "space_commit_sha": space.commit_sha,
            "space_files": space.files,
            "notes": notes,
        }
    )


def _visibility_note(pushed: PushResult, private: bool, repo_id: str) -> list[str]:
    if pushed.private is None or pushed.private == private:
        return []
    shown = "private" if pushed.private else "public"
    return [
        f"{repo_id} already existed and stays {shown}; change its visibility in its settings "
        "on the Hub if you meant otherwise."
    ]


def _message(folder: ModelFolder) -> str:
    metrics = folder.metrics
    held = metrics.holdout.get(metrics.metric)
    score = f" ({metrics.metric} {fmt(held)} held out)" if held is not None else ""
    return f"Deploy {folder.meta.model_id}{score}, trained by mltrainer"


def _text(files: list[BundleFile], path: str) -> str:
    return next(f.data.decode("utf-8") for f in files if f.path == path)
