"""The typed shapes of deployment: what the caller asks for and what comes back."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class DeployOptions(BaseModel):
    """How to deploy one model folder (the tool's arguments, after the model is found)."""

    repo_id: str = Field(description="The model repository, 'namespace/name'.")
    private: bool = True
    space: bool = False
    space_id: str | None = Field(
        default=None, description="The Space, 'namespace/name'; default '<repo_id>-demo'."
    )
    dry_run: bool = False


class DeployedFile(BaseModel):
    path: str = Field(description="Path in the repository.")
    bytes: int
    sha256: str
    changed: bool = Field(
        default=True, description="False when the repository already held this exact content."
    )


class DeployResult(BaseModel):
    """What deploy_model returns."""

    repo_id: str
    repo_url: str | None = Field(description="The model repository's page (None on a dry run).")
    commit_sha: str | None = Field(
        description="The commit holding this model: a new one, or the existing one when the "
        "repository already held exactly these files (None on a dry run)."
    )
    committed: bool = Field(description="Whether this call made a new commit.")
    files: list[DeployedFile]
    space_id: str | None = None
    space_url: str | None = None
    space_commit_sha: str | None = None
    space_files: list[DeployedFile] = Field(default_factory=list)
    card_preview: str = Field(description="The model card (README.md) as uploaded.")
    dry_run: bool = False
    notes: list[str] = Field(default_factory=list, description="What to do next, if anything.")


CheckStatus = Literal["valid", "invalid", "unreachable"]


class CredentialCheck(BaseModel):
    """A credential checked live against its service; never holds the value."""

    service: Literal["huggingface", "kaggle"]
    status: CheckStatus
    account: str | None = Field(default=None, description="The account the credential belongs to.")
    role: str | None = Field(
        default=None,
        description="Hugging Face: 'read', 'write' or 'fineGrained'; Kaggle: 'api_key' or "
        "'access_token'.",
    )
    can_write: list[str] = Field(
        default_factory=list,
        description="Hugging Face: the namespaces this token may create and write repositories in.",
    )
    message: str = Field(description="One sentence for the person: what was found, what to do.")
