"""Shared test settings: small matrices run fastest (and most reproducibly) on one thread."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _single_thread() -> None:
    torch.set_num_threads(1)
