"""Unit tests are fast and start no process: one that tries fails, naming the command."""

from __future__ import annotations

import subprocess

import pytest


def _refuse(self: subprocess.Popen, args: object, *rest: object, **options: object) -> None:
    raise AssertionError(f"a unit test starts no process (it belongs in tests/integration): {args}")


@pytest.fixture(autouse=True)
def no_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse)
