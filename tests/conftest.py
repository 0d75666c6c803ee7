import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration carries the `integration` marker (`-m "not integration"`: unit only)."""
    for item in items:
        if (TESTS / "integration") in Path(item.path).parents:
            item.add_marker(pytest.mark.integration)

# Tiny models gain nothing from more threads, and spinning OpenMP threads of the tests and of the workers
# they start would fight over the cores (set before torch is imported; children inherit it).
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A randomly initialised tiny Moonshine folder, built once per test session."""
    from tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-moonshine"))


@pytest.fixture(scope="session", autouse=True)
def own_machine_state(tmp_path_factory):
    """Torch workers started by the tests take this session's heavy lock, not the machine's (a real run may
    hold that one), and see mains power (a laptop on battery would pause their training)."""
    root = tmp_path_factory.mktemp("machine")
    (root / "power_supply").mkdir()
    os.environ["VOCABD_HEAVY_LOCK"] = str(root / "heavy.lock")
    os.environ["VOCABD_POWER_SUPPLY"] = str(root / "power_supply")
    os.environ["VOCABD_MERGED_CACHE"] = str(root / "merged")  # tiny merged models never evict real ones


@pytest.fixture
def ws(tmp_path):
    """A default workspace (`vocabd init`), nothing configured."""
    from vocabd.workspace import init_workspace

    return init_workspace(tmp_path / "ws")


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder outside the workspace with a file nothing may touch."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "victim.txt").write_text("precious\n", encoding="utf-8")
    return folder
