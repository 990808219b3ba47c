"""Shared fixtures: one warm local Ray for all unit tests that need it."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "token")


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray with 4 logical CPUs and no dashboard, started once, stopped at the end."""
    import raycourse

    os.environ.pop("RAY_ADDRESS", None)
    session = raycourse.start(num_cpus=4, dashboard=False)
    yield session
    raycourse.stop()


@pytest.fixture
def no_strict(monkeypatch):
    monkeypatch.delenv("RAYCOURSE_STRICT", raising=False)
    monkeypatch.delenv("RAYCOURSE_GRADE_LOG", raising=False)
