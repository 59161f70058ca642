"""Small datasets and helpers shared by the dataset tests."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from mltrainer.state.secrets import SecretVault
from mltrainer.state.settings import Settings
from mltrainer.state.store import Store

IRIS_CSV = b"sepal,petal,species\n5.1,1.4,setosa\n6.2,4.5,versicolor\n7.7,6.7,virginica\n"
TRAIN_CSV = b"id,x,y\n1,0.5,yes\n2,0.1,no\n3,0.9,yes\n"
TEST_CSV = b"id,x\n4,0.3\n5,0.7\n"


def raw_zip(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return buffer.getvalue()


@dataclass
class DataContext:
    """What the dataset functions need: settings, store and vault (no job machinery)."""

    settings: Settings
    store: Store
    vault: SecretVault
