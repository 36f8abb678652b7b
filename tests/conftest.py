import pytest

import aecore  # noqa: F401  (first: sets the OpenMP wait policy before torch loads)
import torch

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def mnist():
    from aecore.data import load_dataset

    return load_dataset("mnist-5k")


# Test tiers (pyproject.toml): a file's tier unless a test marks itself. `pytest -m unit` takes about a minute.
SLOW_FILES = {"test_app.py", "test_checkerboard_page.py", "test_cli.py", "test_cli_bad_input.py", "test_distributed.py",
              "test_fit.py", "test_runs.py", "test_shipped.py", "test_train.py"}


@pytest.hookimpl(tryfirst=True)  # before -m selects by these marks
def pytest_collection_modifyitems(items):
    for item in items:
        if any(item.get_closest_marker(name) for name in ("unit", "slow", "browser")):
            continue
        tier = "browser" if item.path.name == "test_browser.py" else "slow" if item.path.name in SLOW_FILES else "unit"
        item.add_marker(tier)
