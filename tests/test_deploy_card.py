"""The model card: built from a trained model's folder only, with metadata the Hub's own parsers
accept, and text that data cannot turn into markup or template code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from deploy_fixtures import Trained

from mltrainer.state.errors import JobStateError, NotFound
from mltrainer.state.masking import Masker
from mltrainer.tools.deploy.bundle import model_files
from mltrainer.tools.deploy.card import build_card
from mltrainer.tools.deploy.folder import read_folder

pytestmark = pytest.mark.slow  # the long tier: .ci/run runs it after the README's command

pytest_plugins = ["deploy_fixtures"]


def _front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_card_metadata_is_what_the_hub_parses(trained: Trained, tmp_path: Path) -> None:
    from huggingface_hub import ModelCard, metadata_load
    from huggingface_hub.repocard_data import model_index_to_eval_results

    folder = trained.folder(trained.classifier)
    card = build_card(folder, repo_id="fakeuser/churn")
    text = str(card)
    holdout = json.loads((folder / "metrics.json").read_text())["holdout"]

    meta = _front_matter(text)
    assert meta["library_name"] == "sklearn"
    assert meta["pipeline_tag"] == "tabular-classification"
    assert {"mltrainer", "skops", "tabular"} <= set(meta["tags"])
    (tmp_path / "README.md").write_text(text)
    assert metadata_load(tmp_path / "README.md") == meta

    parsed = ModelCard(text).data  # the Hub client's own parser, model-index included
    assert parsed.eval_results is not None
    assert {r.metric_type: r.metric_value for r in parsed.eval_results} == holdout
    name, results = model_index_to_eval_results(meta["model-index"])
    assert name == trained.classifier and {r.dataset_split for r in results} == {"holdout"}


def test_card_sections_say_what_a_reader_needs(trained: Trained) -> None:
    folder = trained.folder(trained.classifier)
    text = str(build_card(folder, repo_id="fakeuser/churn"))
    meta = json.loads((folder / "meta.json").read_text())
    manifest = json.loads((folder / "manifest.json").read_text())
    for heading in (
        "## Intended use",
        "## Training data",
        "## Evaluation",
        "## Notable decisions",
        "## Limitations",
        "## How to use",
    ):
        assert heading in text
    assert "`label`" in text and all(f"`{name}`" in text for name in meta["features"])
    assert manifest["data"]["sha256"] in text
    assert "Cross-validated roc\\_auc (higher is better)" in text
    assert "hf download fakeuser/churn" in text and "python predict.py" in text
    for name in meta["trusted_types"]:  # the exact list to pass to skops
        assert f'    "{name}",' in text
    assert str(trained.home) not in text  # a local path is reduced to its file name
    assert "a local file, churn.csv" in text


@pytest.mark.parametrize(
    ("reference", "datasets", "shown"),
    [
        ("hf:scikit-learn/iris:default/train", ["scikit-learn/iris"], "hf:scikit-learn/iris"),
        (
            "kaggle:uciml/iris",
            ["https://www.kaggle.com/datasets/uciml/iris"],
            "kaggle:uciml/iris",
        ),
        ("https://example.org/data.csv?key=abc", None, "https://example.org/data.csv"),
    ],
)
def test_card_names_the_data_source(
    model_copy: Path,
    reference: str,
    datasets: list[str] | None,
    shown: str,
) -> None:
    manifest = json.loads((model_copy / "manifest.json").read_text())
    manifest["data"]["ref"] = reference
    manifest["license"] = "mit"
    (model_copy / "manifest.json").write_text(json.dumps(manifest))
    text = str(build_card(model_copy))
    meta = _front_matter(text)
    assert meta.get("datasets") == datasets
    assert meta["license"] == "mit"
    assert shown in text and "key=abc" not in text


def test_dropped_columns_and_their_reasons_are_in_the_card(model_copy: Path) -> None:
    plan = json.loads((model_copy / "plan.json").read_text())
    plan["dropped"] = [
        {"name": "customer_id", "reason": "an identifier: unique per row"},
        {"name": "churned_at", "reason": "leaks the target"},
    ]
    (model_copy / "plan.json").write_text(json.dumps(plan))
    text = str(build_card(model_copy))
    assert "- `customer_id`: an identifier: unique per row" in text
    assert "- `churned_at`: leaks the target" in text


def test_column_names_cannot_inject_template_code_or_markup(model_copy: Path) -> None:
    meta = json.loads((model_copy / "meta.json").read_text())
    meta["features"] = ["{{ 7 * 7 }}", "a`b|c", "<script>alert(1)</script>"]
    meta["target"] = "{% raw %}x"
    (model_copy / "meta.json").write_text(json.dumps(meta))
    text = str(build_card(model_copy))
    assert "`{{ 7 * 7 }}`" in text and "`49`" not in text  # shown, not evaluated
    assert "`` a`b\\|c ``" in text  # a longer fence around a backtick, the pipe escaped
    assert "<script>" not in text.replace("`<script>alert(1)</script>`", "")


def test_an_intermediate_model_without_its_report_is_refused(model_copy: Path) -> None:
    (model_copy / "metrics.json").unlink()
    with pytest.raises(JobStateError, match="no evaluation report yet"):
        build_card(model_copy)
    with pytest.raises(NotFound):
        read_folder(model_copy.parent / "missing")


def test_uploaded_manifest_holds_no_local_path(trained: Trained) -> None:
    folder = read_folder(trained.folder(trained.classifier))
    files = {f.path: f.data for f in model_files(folder, "card", Masker())}
    assert str(trained.home).encode() not in files["manifest.json"]
    manifest = json.loads(files["manifest.json"])
    assert manifest["data"]["path"] == "churn.csv" and manifest["request"]["dataset"] == "churn.csv"
    requirements = files["requirements.txt"].decode().splitlines()
    versions = folder.library_versions
    assert f"scikit-learn=={versions['scikit-learn']}" in requirements
    assert f"skops=={versions['skops']}" in requirements


def test_a_metric_without_a_value_is_left_out_of_the_metadata(model_copy: Path) -> None:
    metrics = json.loads((model_copy / "metrics.json").read_text())
    metrics["holdout"]["log_loss"] = float("nan")
    (model_copy / "metrics.json").write_text(json.dumps(metrics))
    meta = _front_matter(str(build_card(model_copy)))
    reported = meta["model-index"][0]["results"][0]["metrics"]
    assert "log_loss" not in {m["type"] for m in reported} and len(reported) >= 2
