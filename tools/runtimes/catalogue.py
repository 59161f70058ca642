"""The providers' catalogue (data/catalogue.json), typed: GPU types, prices, quotas and limits.

One dated file. Every figure was taken from the provider's documentation on the date its
section says (``as_of``), from the sources it lists; a figure that was not found is None and
is then not checked. Cost estimates quote that date, so a stale price is visible where it is
used.
"""

from __future__ import annotations

import json
from datetime import date
from functools import cache
from importlib import resources

from pydantic import BaseModel, Field

from mltrainer.state.errors import InvalidInput


class Gpu(BaseModel):
    name: str
    memory_gb: float
    bf16: bool


class GpuTable(BaseModel):
    as_of: date
    source: str
    types: dict[str, Gpu]
    aliases: dict[str, str] = Field(
        default_factory=dict, description="Other spellings of a type, e.g. 'A10' for 'A10G'."
    )


class Source(BaseModel):
    url: str
    read: date = Field(description="When the figures were read from it.")
    gave: str
    via: str | None = Field(default=None, description="A copy, when the page itself was not.")


class Prices(BaseModel):
    gpu: dict[str, float] = Field(description="USD per second of one GPU, by type.")
    cpu_core: float = Field(description="USD per second of one physical core.")
    memory_gib: float = Field(description="USD per second of one GiB of memory.")


class Range(BaseModel):
    min: float | None = None
    max: float | None = None


class GpuCount(BaseModel):
    max: int
    by_gpu: dict[str, int] = Field(default_factory=dict, description="A lower maximum by type.")


class Parallel(BaseModel):
    max: int = Field(description="Containers or sessions at once.")
    max_gpu: int = Field(description="GPUs at once.")


class Limits(BaseModel):
    timeout_s: Range
    cpu: Range
    memory_gb: Range
    gpu_count: GpuCount
    parallel: Parallel
    dataset_gb: float | None = None
    session_s: int | None = None
    gpu_hours_per_week: float | None = None
    output_gb: float | None = None


class Defaults(BaseModel):
    cpu: float
    memory_gb: float
    startup_timeout_s: int = Field(
        description="Container start time the provider may bill besides the timeout."
    )


class Provider(BaseModel):
    name: str
    as_of: date
    free: bool = False
    sources: list[Source]
    prices_usd_per_s: Prices
    gpu_names: dict[str, str] = Field(
        default_factory=dict, description="Our GPU name -> the provider's, where they differ."
    )
    limits: Limits
    defaults: Defaults
    notes: list[str] = Field(default_factory=list)

    @property
    def gpus(self) -> list[str]:
        """The GPU types this provider offers, by our names."""
        return list(self.prices_usd_per_s.gpu)


class Catalogue(BaseModel):
    gpus: GpuTable
    providers: dict[str, Provider]
    default_gpu: dict[str, str]

    def gpu(self, name: str) -> Gpu:
        """A GPU type by any spelling of its name; unknown names are refused with the list."""
        found = self.gpu_name(name)
        if found is None:
            raise InvalidInput(
                f"Unknown GPU {name!r}.",
                next_step=f"Use one of {', '.join(self.gpus.types)} (catalogue of "
                f"{self.gpus.as_of}).",
            )
        return self.gpus.types[found]

    def gpu_name(self, name: str) -> str | None:
        """Our name of a GPU type, whatever the case or alias; None if unknown."""
        known = {key.lower(): key for key in self.gpus.types}
        known |= {alias.lower(): key for alias, key in self.gpus.aliases.items()}
        return known.get(name.strip().lower())

    def provider(self, name: str) -> Provider:
        return self.providers[name]


@cache
def catalogue() -> Catalogue:
    text = resources.files("mltrainer.tools.runtimes").joinpath("data/catalogue.json")
    raw = json.loads(text.read_text("utf-8"))
    raw["gpus"]["types"] = {k: {"name": k, **v} for k, v in raw["gpus"]["types"].items()}
    raw["providers"] = {k: {"name": k, **v} for k, v in raw["providers"].items()}
    return Catalogue.model_validate(raw)
