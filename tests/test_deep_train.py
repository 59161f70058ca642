"""train_model for the deep-learning tasks, end to end through a real MCP client on the fake
Modal: planned, rendered, proven by the guard's dry run in the sandbox, submitted, run by the
fake (the rendered script in dry-run mode: a tiny random model, no download), brought back into
models/<model_id>, registered, and used by predict here on new inputs. And every bad input of
#13 refused as a tool error before anything reaches the fake (it sees no spawn).

Needs the ``deep`` extra (skipped with the reason without it; failed under
MLTRAINER_REQUIRE_EXTRAS=1). The end-to-end runs take minutes on two cores: the long tier.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import connect, error_text, payload, train_until_done
from fakes.kaggle import KEY, USERNAME
from fakes.modal import FakeModal, enable, fast_settings
from runtime_kaggle_fixtures import start_kaggle
from test_deep_dryrun import require_deep_extra
from test_deep_layouts import EN, chat_jsonl, coco, conll, image_folder, png, translation_csv

from mltrainer.state.settings import Settings


@pytest.fixture
def fake_modal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeModal:
    require_deep_extra()
    return enable(tmp_path / "modal-cloud", monkeypatch)


@pytest.fixture
def modal_settings(home: Path, fake_modal: FakeModal) -> Settings:
    return fast_settings(home, dry_run_timeout_s=600)


IMAGES = {"task": "image_classification", "runtime": "modal"}


def assert_nothing_submitted(fake: FakeModal) -> None:
    assert fake.calls("upload") == [] and fake.calls("spawn") == [] and fake.runs() == []


async def refused(settings: Settings, fake: FakeModal, arguments: dict[str, Any]) -> str:
    """The tool error train_model answers; nothing reached the fake."""
    async with connect("memory", settings) as client:
        result = await client.call_tool("train_model", arguments)
    assert_nothing_submitted(fake)
    return error_text(result)


async def trained(client: Any, arguments: dict[str, Any]) -> dict[str, Any]:
    job = payload(await train_until_done(client, {"runtime": "modal", **arguments}))
    assert job["status"] == "succeeded", job["error"]
    return job


@pytest.mark.slow
@pytest.mark.anyio
async def test_image_classification_on_modal_then_predict_labels_new_images(
    modal_settings: Settings, fake_modal: FakeModal, tmp_path: Path
) -> None:
    pets = image_folder(tmp_path / "pets", per_class=8)
    new = tmp_path / "new"
    png(new / "a.png", (0, 100, 200))
    png(new / "b.png", (40, 100, 160), size=(20, 16))
    async with connect("memory", modal_settings) as client:
        job = await trained(
            client, {"dataset": str(pets), "task": "image_classification", "gpu": "T4"}
        )
        result = job["result"]
        assert job["task"] == "image_classification" and job["metric"] == "f1_macro"
        assert job["preflight"]["ok"] and job["preflight"]["dry_run"]["ok"]
        assert job["remote"]["remote_id"].startswith("fc-")
        chosen = {d["stage"]: d["decision"] for d in result["decisions"]}
        assert result["model_name"] == chosen["backbone"] == "facebook/convnext-tiny-224"
        assert result["leaderboard"][0]["name"] == result["model_name"]
        assert {d["stage"] for d in result["decisions"]} >= {"gpu", "backbone", "batch_size"}
        assert "f1_macro" in result["holdout"] and "training_curves.png" in result["artifacts"]
        assert any("dry run" in w for w in result["warnings"])
        folder = modal_settings.models_dir / job["model_id"]
        assert (folder / "model.safetensors").is_file() and (folder / "plan.json").is_file()

        predicted = payload(
            await client.call_tool("predict", {"model": job["job_id"], "dataset": str(new)})
        )
        (tmp_path / "empty").mkdir()
        empty = {"model": job["model_id"], "dataset": str(tmp_path / "empty")}
        assert "holds 0 images" in error_text(await client.call_tool("predict", empty))
        table = {"model": job["model_id"], "dataset": str(new), "output": "sql:secret://DB#t"}
        assert "tabular models only" in error_text(await client.call_tool("predict", table))
    assert predicted["n_rows"] == 2
    assert predicted["columns"] == ["input", "prediction", "proba_cat", "proba_dog"]
    assert {row["prediction"] for row in predicted["preview"]} <= {"cat", "dog"}
    (spawned,) = fake_modal.calls("spawn")
    assert any(r.startswith("transformers==") for r in spawned["job"]["requirements"])


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_deep_dry_run_returns_the_guard_report_and_sends_nothing(
    modal_settings: Settings, fake_modal: FakeModal, tmp_path: Path
) -> None:
    pets = image_folder(tmp_path / "pets", per_class=6)
    arguments = {"dataset": str(pets), "dry_run": True, **IMAGES}
    async with connect("memory", modal_settings) as client:
        job = payload(await client.call_tool("train_model", arguments))
    report = job["preflight"]
    assert job["status"] == "succeeded" and report["ok"] and report["mode"] == "dry_run"
    assert report["dry_run"]["ok"] and "model.safetensors" in report["dry_run"]["written"]
    assert report["estimate"]["usd"] > 0
    assert report["resources"]["gpu"] == "L4"  # Modal's default in the catalogue
    plan = job["result"]  # what the person is shown before any money is spent
    assert job["task"] == "image_classification" and plan["model_name"]
    stages = {d["stage"] for d in plan["decisions"]}
    assert {"gpu", "backbone", "batch_size", "learning_rate"} <= stages
    assert_nothing_submitted(fake_modal)


@pytest.mark.slow
@pytest.mark.anyio
async def test_token_classification_found_by_auto_then_predict_tags_new_sentences(
    modal_settings: Settings, fake_modal: FakeModal, tmp_path: Path
) -> None:
    path = conll(tmp_path / "ner.conll")
    path.write_text(path.read_text() * 8)
    texts = tmp_path / "sentences.txt"
    texts.write_text("Peter rejects EU\nGerman Blackburn\n")
    async with connect("memory", modal_settings) as client:
        job = await trained(client, {"dataset": str(path), "task": "auto"})
        assert job["task"] == "token_classification" and job["metric"] == "f1"
        predicted = payload(
            await client.call_tool("predict", {"model": job["model_id"], "dataset": str(texts)})
        )
    tags = {"B-MISC", "B-ORG", "B-PER", "I-PER", "O"}
    assert predicted["n_rows"] == 2
    for row, words in zip(predicted["preview"], (3, 2), strict=True):
        assert len(row["prediction"].split()) == words
        assert set(row["prediction"].split()) <= tags


def _detection(root: Path) -> tuple[Path, Path]:
    return coco(root / "boxes", n_images=12), root / "boxes" / "images" / "img0.png"


def _translation(root: Path) -> tuple[Path, Path]:
    texts = root / "english.txt"
    texts.write_text("the cat sat on the mat\n")
    return translation_csv(root / "pairs.csv"), texts


def _generation(root: Path) -> tuple[Path, Path]:
    texts = root / "prompts.txt"
    texts.write_text("say something kind\n")
    return chat_jsonl(root / "chat.jsonl", rows=12), texts


def _sentiment(root: Path) -> tuple[Path, Path]:
    table = root / "reviews.csv"
    labels = ["neg", "pos"] * 8
    pd.DataFrame({"text": [EN[i % 2] for i in range(16)], "label": labels}).to_csv(table)
    texts = root / "reviews.txt"
    texts.write_text("a happy cat\n")
    return table, texts


def _summaries(root: Path) -> tuple[Path, Path]:
    table = root / "news.csv"
    documents = [f"{EN[i % 2]} and then {EN[(i + 1) % 2]} again" for i in range(16)]
    pd.DataFrame({"document": documents, "summary": [EN[i % 2] for i in range(16)]}).to_csv(table)
    texts = root / "articles.txt"
    texts.write_text(documents[0] + "\n")
    return table, texts


def _ages(root: Path) -> tuple[Path, Path]:
    names = [png(root / "faces" / f"{i}.png", (10 * i, 90, 200 - 5 * i)).name for i in range(24)]
    table = root / "faces" / "ages.csv"
    ages = [20.0 + i for i in range(24)]
    pd.DataFrame({"image": names, "value": ages}).to_csv(table, index=False)
    return table, png(root / "new" / "face.png", (70, 90, 160))


# The other families, each once: (data, new inputs), the task auto finds, and what predict says.
FAMILIES = {
    "image_regression": (_ages, {}, lambda row: isinstance(row["prediction"], float)),
    "summarization": (_summaries, {}, lambda row: isinstance(row["prediction"], str)),
    "object_detection": (
        _detection,
        {},
        lambda row: {b["label"] for b in json.loads(row["prediction"])} <= {"ball", "box"},
    ),
    "translation": (_translation, {}, lambda row: isinstance(row["prediction"], str)),
    "text_generation": (_generation, {}, lambda row: isinstance(row["prediction"], str)),
    "text_classification": (
        _sentiment,
        {"backbone": "distilbert/distilbert-base-uncased"},
        lambda row: row["prediction"] in ("neg", "pos"),
    ),
}


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize("task", sorted(FAMILIES))
async def test_every_other_family_runs_on_modal_and_predicts_here(
    modal_settings: Settings, fake_modal: FakeModal, tmp_path: Path, task: str
) -> None:
    make, extra, plausible = FAMILIES[task]
    data, new = make(tmp_path)
    async with connect("memory", modal_settings) as client:
        job = await trained(client, {"dataset": str(data), "task": "auto", **extra})
        assert job["task"] == task
        predicted = payload(
            await client.call_tool("predict", {"model": job["model_id"], "dataset": str(new)})
        )
    assert predicted["n_rows"] == 1 and plausible(predicted["preview"][0])


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_deep_dry_run_on_kaggle_asks_for_a_free_t4_and_pushes_nothing(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The Kaggle side of the guard accepts a deep spec (a T4 with internet for the checkpoint,
    free within the quota); nothing is uploaded or pushed."""
    require_deep_extra()
    (tmp_path / "user").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "user"))  # no real ~/.kaggle
    monkeypatch.delenv("KAGGLE_API_TOKEN", raising=False)
    monkeypatch.delenv("KAGGLE_CONFIG_DIR", raising=False)
    monkeypatch.setenv("KAGGLE_USERNAME", USERNAME)
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    path = conll(tmp_path / "ner.conll")
    path.write_text(path.read_text() * 8)
    with start_kaggle() as fake:
        settings = Settings(home=home, kaggle_api_endpoint=fake.url, allow_loopback_http=True)
        async with connect("memory", settings) as client:
            arguments = {"dataset": str(path), "runtime": "kaggle", "dry_run": True}
            job = payload(await client.call_tool("train_model", arguments))
        report = job["preflight"]
        assert job["task"] == "token_classification" and report["ok"], report
        assert report["resources"]["gpu"] == "T4" and report["estimate"]["free"]
        assert all(not kernel.pushes for kernel in fake.kernels.values())


def test_the_real_modal_objects_of_a_deep_job_are_built_without_the_network(
    modal_settings: Settings, fake_modal: FakeModal, tmp_path: Path
) -> None:
    """The real SDK's app and function for a deep spec: the planned GPU, the timeout (budget +
    set-up), the template as the entry, its requirements pinned to the dry run's versions."""
    from mltrainer.state.secrets import SecretVault
    from mltrainer.state.store import Store
    from mltrainer.tools.jobs.deep import deep_spec
    from mltrainer.tools.runtimes.modal import ModalRuntime
    from mltrainer.tools.runtimes.modal_sdk import build_app, function_options
    from mltrainer.tools.training.request import TrainRequest

    modal_settings.ensure_dirs()
    vault = SecretVault.for_settings(modal_settings)
    store = Store(modal_settings.db_path)
    pets = image_folder(tmp_path / "pets")
    request = TrainRequest(dataset=str(pets), runtime="modal", gpu="A10G", time_budget_s=900)
    spec, plan = deep_spec(
        modal_settings, store, vault, "job_0123456789ab", request, "image_classification"
    )
    assert spec.kind == "deep" and spec.internet and (spec.run_dir / spec.entry).is_file()
    runtime = ModalRuntime.connect(modal_settings, vault)
    assert runtime.validate(spec) == []
    job = runtime.job(spec, with_secrets=True)
    function = build_app(job).function
    assert function._spec_.gpus == "A10"  # our A10G, by Modal's name
    assert function_options(job)["timeout"] == 900 + 600
    assert any(r.startswith("torch==") for r in job.requirements)
    assert plan.gpu == "A10G" and job.entry == "train.py"


# -- bad input: each a tool error before anything reaches the fake --------------------------


@pytest.mark.anyio
async def test_a_backbone_of_the_wrong_class_is_refused_before_submission(
    modal_settings: Settings, fake_modal: FakeModal, tmp_path: Path
) -> None:
    pets = image_folder(tmp_path / "pets")
    arguments = {"dataset": str(pets), "backbone": "distilbert-base-uncased", **IMAGES}
    text = await refused(modal_settings, fake_modal, arguments)
    assert "needs a vision model" in text and "distilbert" in text


@pytest.mark.anyio
async def test_a_gpu_too_small_for_the_backbone_is_refused_before_submission(
    modal_settings: Settings, fake_modal: FakeModal, tmp_path: Path
) -> None:
    chat = tmp_path / "chat.jsonl"
    rows = [{"instruction": EN[i % 2], "response": "ok"} for i in range(12)]
    pd.DataFrame(rows).to_json(chat, orient="records", lines=True)
    arguments = {
        "dataset": str(chat),
        "task": "text_generation",
        "runtime": "modal",
        "gpu": "T4",
        "backbone": "meta-llama/Llama-3.1-8B",
    }
    text = await refused(modal_settings, fake_modal, arguments)
    assert "T4" in text and "GB" in text


@pytest.mark.anyio
async def test_labels_missing_in_a_split_are_refused_before_submission(
    modal_settings: Settings, fake_modal: FakeModal, tmp_path: Path
) -> None:
    root = tmp_path / "split"
    for split in ("train", "validation", "test"):
        png(root / split / "cat" / "0.png")
        if split != "test":
            png(root / split / "dog" / "0.png", (0, 0, 250))
    text = await refused(modal_settings, fake_modal, {"dataset": str(root), **IMAGES})
    assert "dog" in text and "test" in text


@pytest.mark.anyio
async def test_images_that_fail_to_decode_are_refused_before_submission(
    modal_settings: Settings, fake_modal: FakeModal, tmp_path: Path
) -> None:
    pets = image_folder(tmp_path / "pets")
    (pets / "dog" / "broken.png").write_bytes(b"\x89PNG not really")
    text = await refused(modal_settings, fake_modal, {"dataset": str(pets), **IMAGES})
    assert "broken.png" in text and "decode" in text


@pytest.mark.anyio
async def test_auto_on_an_image_folder_with_a_broken_image_names_it(
    modal_settings: Settings, fake_modal: FakeModal, tmp_path: Path
) -> None:
    """task='auto' falls back to the tabular engine only for what could be a table: a folder
    of images that fails its layout check says why, not that it is no table."""
    pets = image_folder(tmp_path / "pets")
    (pets / "cat" / "broken.jpg").write_bytes(b"not a jpeg")
    arguments = {"dataset": str(pets), "runtime": "modal"}
    text = await refused(modal_settings, fake_modal, arguments)
    assert "broken.jpg" in text and "decode" in text


@pytest.mark.anyio
async def test_a_deep_task_on_local_without_a_gpu_says_to_use_a_gpu_runtime(
    modal_settings: Settings, fake_modal: FakeModal, tmp_path: Path
) -> None:
    pets = image_folder(tmp_path / "pets")
    arguments = {"dataset": str(pets), "task": "image_classification"}
    text = await refused(modal_settings, fake_modal, arguments)
    assert "needs a CUDA GPU" in text and "runtime='modal'" in text


@pytest.mark.anyio
async def test_a_tabular_text_table_stays_tabular_without_a_gpu_or_backbone(
    settings: Settings, tmp_path: Path
) -> None:
    """task='auto' on a text/label table keeps today's local TF-IDF model; with a backbone it
    becomes the fine-tuned transformer (checked here through the task it resolves to)."""
    from mltrainer.state.secrets import SecretVault
    from mltrainer.state.store import Store
    from mltrainer.tools.jobs.deep import deep_task
    from mltrainer.tools.training.request import TrainRequest

    table = tmp_path / "reviews.csv"
    pd.DataFrame({"text": EN * 10, "label": ["a", "b"] * 10}).to_csv(table, index=False)
    settings.ensure_dirs()
    vault = SecretVault.for_settings(settings)
    store = Store(settings.db_path)
    plain = TrainRequest(dataset=str(table), target="label")
    assert deep_task(plain, settings, store, vault) is None
    named = plain.model_copy(update={"backbone": "distilbert-base-uncased"})
    assert deep_task(named, settings, store, vault) == "text_classification"
    asked = plain.model_copy(update={"task": "text_classification", "gpu": "T4"})
    assert deep_task(asked, settings, store, vault) == "text_classification"
