"""Shared fixtures: one warm local Ray for all unit tests that need it."""
from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def ray_with(**start_kwargs):
    """Run a test module on a Ray started with other resources, then put the shared 4-CPU Ray back.

    Also clears strict mode and the grade log for the module, as ``no_strict`` does per test.
    """
    import ray

    import raycourse

    saved = {k: os.environ.pop(k) for k in ("RAYCOURSE_STRICT", "RAYCOURSE_GRADE_LOG") if k in os.environ}
    shared = ray.is_initialized()
    raycourse.stop()
    raycourse.start(dashboard=False, **start_kwargs)
    try:
        yield
    finally:
        raycourse.stop()
        if shared:
            raycourse.start(num_cpus=4, dashboard=False)
        os.environ.update(saved)


@pytest.fixture(autouse=True)
def _pickle_test_functions_by_value(request):
    """Test modules are not importable in Ray's workers: ship their functions by value."""
    if request.module is not None and "ray" in __import__("sys").modules:
        import ray.cloudpickle

        ray.cloudpickle.register_pickle_by_value(request.module)


@pytest.fixture
def no_strict(monkeypatch):
    monkeypatch.delenv("RAYCOURSE_STRICT", raising=False)
    monkeypatch.delenv("RAYCOURSE_GRADE_LOG", raising=False)
