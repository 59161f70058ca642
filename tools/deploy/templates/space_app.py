"""A Gradio demo of a model trained by mltrainer: a form with one input per feature, and a CSV
upload for many rows at once.

Deployed as a Hugging Face Space by mltrainer-mcp. ``schema.json`` beside this file names the
model repository (and the commit) to serve and describes the inputs: their kinds and example
values come from the training data's profile, never from its rows. The model is loaded by the
model's own standalone ``predict.py``, which refuses any type in model.skops beyond the ones
recorded when it was saved. A private model needs a read token as the Space secret HF_TOKEN;
HF_ENDPOINT points at another Hub.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import gradio as gr
import pandas as pd

HERE = Path(__file__).resolve().parent
SCHEMA = json.loads((HERE / "schema.json").read_text(encoding="utf-8"))
MODEL_FILES = ("model.skops", "meta.json", "predict.py")
MAX_CSV_ROWS = 10_000


def download_model(target: Path | None = None) -> Path:
    """The model's files from its repository, as plain files in ``target``."""
    from huggingface_hub import hf_hub_download

    target = target or HERE / "model"
    for name in MODEL_FILES:
        hf_hub_download(
            SCHEMA["model_repo"],
            name,
            revision=SCHEMA.get("revision") or None,
            local_dir=target,
            token=os.environ.get("HF_TOKEN") or None,
            endpoint=os.environ.get("HF_ENDPOINT") or None,
        )
    return target


class Predictor:
    """The model, loaded through the predict.py that was published with it."""

    def __init__(self, folder: Path) -> None:
        self.script = _import(folder / "predict.py")
        self.meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        self.model = self.script.load_model()
        self.features: list[str] = list(self.meta["features"])
        self.classes: list[str] = [str(c) for c in self.meta.get("classes") or []]

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        return self.script.predict(self.model, self.meta, frame)

    def predict_one(self, *values: Any) -> Any:
        # One value per form field, in the schema's order (the model's feature order).
        row = {f["name"]: _value(f, v) for f, v in zip(SCHEMA["fields"], values, strict=True)}
        out = self.predict_frame(pd.DataFrame([row], columns=self.features))
        if self.classes:
            return {
                c: float(out[f"proba_{c}"].iloc[0]) for c in self.classes if f"proba_{c}" in out
            }
        return float(out["prediction"].iloc[0])

    def predict_csv(self, path: str | None) -> pd.DataFrame:
        if not path:
            raise gr.Error("Upload a CSV file with the model's input columns first.")
        frame = pd.read_csv(path, nrows=MAX_CSV_ROWS)
        missing = [name for name in self.features if name not in frame.columns]
        if missing:
            raise gr.Error(f"The file lacks the column(s) {', '.join(missing)}.")
        return pd.concat([frame[self.features], self.predict_frame(frame)], axis=1)


def _import(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("model_predict", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _value(field: dict[str, Any], value: Any) -> Any:
    """A form value as the model expects it: numbers as floats, empty inputs as missing."""
    if value is None or value == "":
        return None
    if field.get("kind") == "numeric":
        return float(value)
    return value


def component(field: dict[str, Any]) -> Any:
    """The input for one feature, from its kind and example."""
    name, kind, example = field["name"], field.get("kind"), field.get("example")
    if kind == "numeric":
        return gr.Number(label=name, value=example)
    if field.get("choices"):
        return gr.Dropdown(
            label=name, choices=field["choices"], value=example, allow_custom_value=True
        )
    return gr.Textbox(label=name, value=example, placeholder=kind or "")


def build_demo(predictor: Predictor | None = None) -> gr.Blocks:
    predictor = predictor or Predictor(download_model())
    title = SCHEMA.get("title") or SCHEMA["model_repo"]
    with gr.Blocks(title=title) as demo:
        gr.Markdown(f"# {title}\n\n{SCHEMA.get('description', '')}")
        with gr.Tab("One row"):
            inputs = [component(field) for field in SCHEMA["fields"]]
            button = gr.Button("Predict", variant="primary")
            output = (
                gr.Label(label="prediction", num_top_classes=10)
                if predictor.classes
                else gr.Number(label="prediction")
            )
            button.click(predictor.predict_one, inputs=inputs, outputs=output)
        with gr.Tab("CSV file"):
            upload = gr.File(
                label="CSV with the input columns", file_types=[".csv"], type="filepath"
            )
            table = gr.Dataframe(label="predictions")
            gr.Button("Predict").click(predictor.predict_csv, inputs=upload, outputs=table)
    return demo


if __name__ == "__main__":
    build_demo().launch()
