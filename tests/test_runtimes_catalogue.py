"""The providers' catalogue is one dated file with its sources; estimates quote its date; the
README's price table is the catalogue's; the run folder's inputs are checked (requirements by
name only, outputs inside the output folder, a sample that keeps every class)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO

from mltrainer.state.errors import InvalidInput
from mltrainer.tools.deep import catalogue as deep_catalogue
from mltrainer.tools.runtimes.base import RemoteSpec, Resources
from mltrainer.tools.runtimes.catalogue import catalogue
from mltrainer.tools.runtimes.jobspec import checked_outputs, checked_requirements
from mltrainer.tools.runtimes.modal import estimate
from mltrainer.tools.runtimes.sample import make_sample


def test_every_provider_is_dated_and_sourced_and_prices_only_known_gpus() -> None:
    found = catalogue()
    assert set(found.providers) == {"modal", "kaggle"}
    for provider in found.providers.values():
        assert date(2026, 1, 1) <= provider.as_of <= date.today()
        assert provider.sources and all(s.url.startswith("https://") for s in provider.sources)
        assert all(
            s.read >= provider.as_of or s.read == date(2026, 11, 29) for s in provider.sources
        )
        assert set(provider.gpus) <= set(found.gpus.types)
        assert set(provider.gpu_names) <= set(provider.gpus)
    assert found.providers["kaggle"].free
    assert found.gpu_name("a10") == "A10G" and found.gpu_name("K80") is None
    with pytest.raises(InvalidInput, match=r"Unknown GPU 'K80'.*catalogue of 2026"):
        found.gpu("K80")


def test_tools_deep_plans_with_the_same_gpu_table() -> None:
    deep = deep_catalogue.gpus()
    assert deep.gpus == catalogue().gpus.types
    assert deep.taken == catalogue().gpus.as_of.isoformat()
    assert deep.default_gpu == catalogue().default_gpu
    assert not (REPO / "tools" / "deep" / "data" / "gpus.json").exists()


def test_an_estimate_is_the_most_a_run_can_cost_and_quotes_the_prices_date(tmp_path: Path) -> None:
    modal = catalogue().provider("modal")
    spec = RemoteSpec(
        job_id="job_x",
        kind="script",
        run_dir=tmp_path,
        entry="train.py",
        resources=Resources(gpu="H100", gpu_count=2, timeout_s=3000, parallel=3),
    )
    found = estimate(spec, modal)
    per_s = 2 * 0.001097 + 4 * 0.0000131 + 16 * 0.00000222
    assert found.usd == pytest.approx(per_s * (3000 + 600) * 3, abs=1e-3)
    assert found.prices_as_of == modal.as_of and not found.free
    assert "2 × H100 $3.95/h" in found.basis and "× 3 containers" in found.basis


def test_the_readme_price_table_is_the_catalogues() -> None:
    readme = (REPO / "README.md").read_text()
    modal = catalogue().provider("modal")
    assert f"Modal, prices of {modal.as_of}" in readme
    rows = re.findall(r"^\| ([^|]+) \| ([^|]+) \|$", readme, re.M)
    table = {}
    for names, prices in rows:
        for name, price in zip(names.split(" / "), prices.split(" / "), strict=False):
            table[name.strip()] = price.strip()
    for gpu, per_s in modal.prices_usd_per_s.gpu.items():
        assert table[gpu] == f"${per_s * 3600:.2f}", gpu


def test_requirements_are_package_names_and_outputs_stay_in_the_output_folder() -> None:
    assert checked_requirements(["lightgbm==4.5.0", "numpy>=2,<3"]) == [
        "lightgbm==4.5.0",
        "numpy<3,>=2",
    ]
    for bad in ("pkg @ https://evil.example/pkg.whl", "--index-url=https://evil.example", "a b c"):
        with pytest.raises(InvalidInput):
            checked_requirements([bad])
    assert checked_outputs(["model.pt", "metrics/scores.json"]) == [
        "model.pt",
        "metrics/scores.json",
    ]
    for bad in ("../escape", "/etc/passwd", "a/../../b", "", "spaces are bad"):
        with pytest.raises(InvalidInput):
            checked_outputs([bad])


def test_the_dry_run_sample_keeps_tables_short_and_every_class_of_a_sorted_file(
    tmp_path: Path,
) -> None:
    source = tmp_path / "data"
    (source / "images").mkdir(parents=True)
    pd.DataFrame({"x": range(5000), "label": ["a"] * 4000 + ["b"] * 1000}).to_csv(
        source / "train.csv", index=False
    )
    pd.DataFrame({"x": range(3000), "y": [1.5] * 3000}).to_parquet(source / "more.parquet")
    (source / "images" / "one.png").write_bytes(b"\x89PNG" + b"0" * 100)
    (source / "big.bin").write_bytes(b"0" * (2 * 1024 * 1024))
    report = make_sample(source, tmp_path / "sample", 200, spread_column="label")
    assert report.tables == ["more.parquet", "train.csv"]
    assert report.copied == ["images/one.png"] and report.left_out == ["big.bin"]
    train = pd.read_csv(tmp_path / "sample" / "train.csv")
    assert len(train) == 200 and set(train["label"]) == {"a", "b"}  # not the first 200 rows
    assert len(pd.read_parquet(tmp_path / "sample" / "more.parquet")) == 200
