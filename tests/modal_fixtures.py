"""Fixtures for tests on the fake Modal (tests/fakes/modal.py): the fake cloud, enabled for
the servers a test starts, and settings that poll and retry it quickly."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes.modal import FakeModal, enable, fast_settings

from mltrainer.state.settings import Settings


@pytest.fixture
def fake_modal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeModal:
    return enable(tmp_path / "modal-cloud", monkeypatch)


@pytest.fixture
def modal_settings(home: Path, fake_modal: FakeModal) -> Settings:
    return fast_settings(home)
