"""Settings from the environment (prefix ``MLTRAINER_``) and an optional ``config.toml``.

One object, built once at start-up and passed down; nothing reads ``os.environ`` for
configuration anywhere else.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_home() -> Path:
    from platformdirs import user_data_path

    return user_data_path("mltrainer", appauthor=False)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MLTRAINER_", extra="ignore")

    home: Path = Field(default_factory=default_home, description="State directory.")
    sandbox: Literal["auto", "docker", "bwrap", "process"] = Field(
        default="auto",
        description="Sandbox backend; 'auto' picks Docker, then bubblewrap, and never "
        "falls back to an unisolated process unless 'process' is chosen explicitly.",
    )
    sandbox_image: str = Field(
        default="mltrainer-sandbox:latest",
        description="The Docker image run_code runs in (built locally from the package's Dockerfile).",
    )
    sandbox_allow_network: bool = Field(
        default=False,
        description="Give run_code's sandbox network access (off: no network at all).",
    )
    sandbox_memory_mb: int = Field(default=4096, ge=64, description="Memory per sandbox.")
    sandbox_max_processes: int = Field(default=256, ge=8, description="Processes per sandbox.")
    sandbox_output_bytes: int = Field(
        default=256 * 1024, ge=1024, description="stdout/stderr kept per call; the rest is cut."
    )
    sandbox_idle_timeout_s: float = Field(default=1800, gt=0, description="Idle sessions end.")
    sandbox_max_sessions: int = Field(
        default=8, ge=1, description="Persistent run_code sessions open at once."
    )
    data_roots: list[Path] = Field(
        default_factory=list,
        description="Directories local dataset paths may come from, besides the current "
        "directory and the state directory.",
    )
    max_download_bytes: int = Field(
        default=20 * 1024**3, description="Largest download; a bigger one is stopped and removed."
    )
    download_timeout_s: float = Field(
        default=3600,
        gt=0,
        description="Overall deadline of one download; it is stopped and removed at it.",
    )
    max_downloads: int = Field(
        default=4,
        ge=1,
        description="Downloads running at once; more are refused at once (never queued on "
        "the server's worker threads).",
    )
    allow_loopback_http: bool = Field(
        default=False,
        description="Let download_dataset fetch plain http:// from this machine (loopback "
        "only; for local testing).",
    )
    allow_private_urls: bool = Field(
        default=False,
        description="Let download_dataset fetch https:// from loopback, link-local (cloud "
        "metadata), private, multicast and reserved addresses.",
    )
    max_extract_bytes: int = Field(
        default=50 * 1024**3,
        description="Most bytes an archive may unpack to (zip bombs are refused).",
    )
    max_extract_entries: int = Field(
        default=100_000, description="Most files an archive may unpack to."
    )
    max_memory_gb: float | None = Field(
        default=None,
        gt=0,
        description="The most memory a local training job may plan for (its data and its "
        "training together); unset: the memory free when the job loads its data. A table "
        "estimated above it is sampled while it is read, or refused with what it would need.",
    )
    job_max_attempts: int = Field(default=3, ge=1, description="Worker starts per job.")
    spare_worker: bool = Field(
        default=True,
        description="Keep one job worker started ahead with the training libraries loaded, so "
        "a job's first model comes about 3 s sooner. It holds about 200 MB while it waits; it "
        "is started with the server and after each job, and exits after spare_worker_idle_s.",
    )
    spare_worker_idle_s: float = Field(
        default=900, gt=0, description="How long the spare worker waits for a job."
    )
    max_concurrent_jobs: int = Field(
        default_factory=lambda: max(1, (os.cpu_count() or 2) // 2),
        ge=1,
        description="Jobs running at once; more wait in the queue (training uses every core).",
    )
    kaggle_api_endpoint: str | None = Field(
        default=None, description="Kaggle API base URL (tests point it at a local fake)."
    )
    hf_endpoint: str | None = Field(
        default=None, description="Hugging Face Hub URL; defaults to HF_ENDPOINT or the Hub."
    )
    modal_api_endpoint: str | None = Field(
        default=None,
        description="Modal API URL; defaults to MODAL_SERVER_URL or https://api.modal.com.",
    )
    modal_client: str | None = Field(
        default=None,
        description="'module:function' that returns a stand-in for the Modal SDK boundary "
        "(tests use tests/fakes/modal.py); unset: the real modal SDK.",
    )
    max_cost_usd: float = Field(
        default=5.0,
        ge=0,
        description="The most a remote run may cost (its resources until its timeout) when the "
        "caller gives no max_cost_usd; a run estimated above it is refused before it is sent.",
    )
    remote_max_upload_gb: float = Field(
        default=50.0, gt=0, description="Data larger than this is not shipped to a provider."
    )
    remote_retries: int = Field(
        default=6, ge=1, le=50, description="Tries per remote stage (upload, submit, poll, fetch)."
    )
    remote_retry_wait_s: float = Field(
        default=2.0, gt=0, le=600, description="First wait between tries; it doubles."
    )
    remote_poll_s: float = Field(
        default=15.0, gt=0, le=600, description="Seconds between two looks at a remote run."
    )
    dry_run_timeout_s: float = Field(
        default=180.0,
        gt=0,
        le=3600,
        description="The pre-flight dry run in the local sandbox is stopped, and refused, at this.",
    )
    dry_run_rows: int = Field(
        default=1000, ge=10, description="Rows of each table the dry run gets (a sample)."
    )
    secrets: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Secrets declared by configuration: NAME -> the hosts it may be sent to, "
        'e.g. MLTRAINER_SECRETS=\'{"MY_API_KEY": ["api.example.com"]}\'. The value comes from '
        "the environment variable NAME or the secrets file.",
    )
    http_token: SecretStr | None = Field(
        default=None,
        description="Bearer token HTTP clients must send; when unset, one is generated at "
        "first start and kept in the state directory (http_token, mode 0600).",
    )
    sql_max_rows: int = Field(
        default=1_000_000,
        ge=1,
        description="Rows one sql: dataset may have; a query that returns more is refused with "
        "the numbers (nothing is kept).",
    )
    sql_timeout_s: float = Field(
        default=300,
        gt=0,
        description="Overall deadline of one read from (or write to) a database, connecting "
        "included; the query is cancelled at it.",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        description="Log every finished training job to MLflow here (sqlite:///path.db, "
        "file:///dir or http(s)://server); unset: no tracking. Needs the 'tracking' extra.",
    )
    mlflow_experiment: str | None = Field(
        default=None,
        description="The MLflow experiment for every run; unset: one experiment per dataset.",
    )
    mlflow_artifact_location: str | None = Field(
        default=None,
        description="Where experiments this server creates keep their artifacts; unset: beside a "
        "sqlite: database, inside a file: store, the server's choice for http(s).",
    )
    mlflow_timeout_s: float = Field(
        default=30, gt=0, le=600, description="Per request to an MLflow tracking server."
    )
    mlflow_max_retries: int = Field(
        default=2, ge=0, le=10, description="Retries of a failed request to a tracking server."
    )

    @field_validator("home", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @cached_property
    def db_path(self) -> Path:
        return self.home / "mltrainer.db"

    @cached_property
    def secrets_path(self) -> Path:
        return self.home / "secrets.json"

    @cached_property
    def http_token_path(self) -> Path:
        return self.home / "http_token"

    @cached_property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"

    @cached_property
    def models_dir(self) -> Path:
        return self.home / "models"

    @cached_property
    def datasets_dir(self) -> Path:
        return self.home / "datasets"

    def ensure_dirs(self) -> None:
        for path in (self.home, self.jobs_dir, self.models_dir, self.datasets_dir):
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
