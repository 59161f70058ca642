"""Kernels that really run: the fake Kaggle executes the pushed script in a folder laid out like
/kaggle (data mounted under input/, working/ kept as output), so these tests prove the
generated script: the run folder unpacked, the data found, the contract's folders, the model
folder brought back intact, and a failure reported with its log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runtime_kaggle_fixtures import KERNEL_REF, KaggleEnv, make_spec
from sandbox_fixtures import wait_until

from mltrainer.tools.runtimes.base import TERMINAL_REMOTE, Handle
from mltrainer.tools.runtimes.kaggle import LOG_NAME

pytestmark = pytest.mark.slow  # the long tier: .ci/run runs it after the README's command

pytest_plugins = ["runtime_kaggle_fixtures"]

SKOPS_TRAIN_PY = """\
import json, os
import numpy as np, pandas as pd, skops.io
from sklearn.linear_model import LogisticRegression

data, output = os.environ["MLTRAINER_INPUT_DIR"], os.environ["MLTRAINER_OUTPUT_DIR"]
frame = pd.read_csv(os.path.join(data, "train.csv"))
model = LogisticRegression().fit(frame[["x"]], frame["y"])
os.makedirs(os.path.join(output, "model"))
skops.io.dump(model, os.path.join(output, "model", "model.skops"))
probe = pd.DataFrame({"x": [0.05, 0.95]})
with open(os.path.join(output, "model", "expected.json"), "w") as out:
    json.dump(model.predict(probe).tolist(), out)
"""


def finish(kg: KaggleEnv, handle: Handle) -> str:
    """Wait for the fake to run the kernel to its end; the runtime's status then."""
    assert kg.fake.kernels[KERNEL_REF].finished.wait(180), "the kernel never finished"
    return kg.runtime.status(handle).status


def test_the_kernel_runs_the_shipped_folder_on_the_uploaded_data(
    kg: KaggleEnv, tmp_path: Path
) -> None:
    kg.fake.run_kernels = True
    handle = kg.runtime.submit(make_spec(tmp_path))
    assert finish(kg, handle) == "succeeded", kg.fake.kernels[KERNEL_REF].log
    written = kg.runtime.fetch(handle, tmp_path / "back")
    meta = json.loads((tmp_path / "back" / "model" / "meta.json").read_text())
    # the helper and config came with the script; the sub-folder came back as a folder
    assert meta == {"rows": 3, "extra": ["notes.txt"], "seed": 7}
    assert (tmp_path / "back" / "model" / "weights.bin").read_bytes() == bytes(range(256)) * 4
    assert not (tmp_path / "back" / "scratch.txt").exists()  # outside the output folder
    log = (tmp_path / "back" / LOG_NAME).read_text()
    assert "mltrainer: job job_0123456789ab: running train.py" in log
    assert "trained on 3 rows" in log and len(written) == 3
    assert "trained on 3 rows" in kg.runtime.logs(handle, None).text


def test_a_model_folder_comes_back_intact_and_predicts_here(kg: KaggleEnv, tmp_path: Path) -> None:
    import pandas as pd
    import skops.io

    spec = make_spec(tmp_path)
    (spec.run_dir / "train.py").write_text(SKOPS_TRAIN_PY)
    kg.fake.run_kernels = True
    handle = kg.runtime.submit(spec)
    assert finish(kg, handle) == "succeeded", kg.fake.kernels[KERNEL_REF].log
    kg.runtime.fetch(handle, tmp_path / "back")
    model_file = tmp_path / "back" / "model" / "model.skops"
    assert (
        model_file.read_bytes() == kg.fake.kernels[KERNEL_REF].outputs["output/model/model.skops"]
    )
    model = skops.io.load(model_file, trusted=skops.io.get_untrusted_types(file=model_file))
    expected = json.loads((tmp_path / "back" / "model" / "expected.json").read_text())
    assert model.predict(pd.DataFrame({"x": [0.05, 0.95]})).tolist() == expected


def test_a_competition_is_found_where_kaggle_mounts_it(kg: KaggleEnv, tmp_path: Path) -> None:
    spec = make_spec(tmp_path, input_dir=None, dataset_ref="kaggle-competition:titanic")
    (spec.run_dir / "train.py").write_text(
        "import json, os\n"
        "data, out = os.environ['MLTRAINER_INPUT_DIR'], os.environ['MLTRAINER_OUTPUT_DIR']\n"
        "json.dump(sorted(os.listdir(data)), open(os.path.join(out, 'files.json'), 'w'))\n"
    )
    kg.fake.rules_accepted.add("titanic")
    kg.fake.run_kernels = True
    handle = kg.runtime.submit(spec)
    assert finish(kg, handle) == "succeeded", kg.fake.kernels[KERNEL_REF].log
    kg.runtime.fetch(handle, tmp_path / "back")
    assert json.loads((tmp_path / "back" / "files.json").read_text()) == ["test.csv", "train.csv"]


def test_status_goes_queued_running_succeeded(
    kg: KaggleEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = tmp_path / "gate"
    monkeypatch.setenv("TEST_GATE_FILE", str(gate))
    spec = make_spec(tmp_path)
    (spec.run_dir / "train.py").write_text(
        "import os, time\n"
        "deadline = time.monotonic() + 300\n"
        "while not os.path.exists(os.environ['TEST_GATE_FILE']) and time.monotonic() < deadline:\n"
        "    time.sleep(0.05)\n"
    )
    kg.fake.run_kernels = kg.fake.hold_runs = True
    handle = kg.runtime.submit(spec)
    kernel = kg.fake.kernels[KERNEL_REF]
    assert kg.runtime.status(handle).status == "queued"
    kernel.started.set()
    assert wait_until(lambda: kernel.status == "RUNNING", 120)
    assert kg.runtime.status(handle).status == "running"
    gate.touch()
    assert finish(kg, handle) == "succeeded"


def test_a_failing_script_fails_the_run_with_the_tail_of_its_log(
    kg: KaggleEnv, tmp_path: Path
) -> None:
    spec = make_spec(tmp_path)
    (spec.run_dir / "train.py").write_text("print('reading')\nraise KeyError('target')\n")
    kg.fake.run_kernels = True
    handle = kg.runtime.submit(spec)
    assert finish(kg, handle) == "failed"
    message = kg.runtime.status(handle).message
    assert "KeyError: 'target'" in message and "train.py exited with status 1" in message
    assert message.index("reading") < message.index("KeyError")
    assert kg.runtime.status(handle).status in TERMINAL_REMOTE


def test_unmet_requirements_with_internet_off_fail_fast_and_say_why(
    kg: KaggleEnv, tmp_path: Path
) -> None:
    spec = make_spec(tmp_path, requirements=["scikit-learn==0.0.1", "numpy"])
    kg.fake.run_kernels = True
    handle = kg.runtime.submit(spec)
    assert finish(kg, handle) == "failed"
    message = kg.runtime.status(handle).message
    assert "internet is off in this kernel" in message
    assert "scikit-learn==0.0.1 (the Kaggle image has" in message
    assert "numpy" not in message.split("installed:")[1].split("Submit")[0]
