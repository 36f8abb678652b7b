import pytest

import aecore  # noqa: F401  (first: sets the OpenMP wait policy before torch loads)
import torch

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def mnist():
    from aecore.data import load_dataset

    return load_dataset("mnist-5k")
