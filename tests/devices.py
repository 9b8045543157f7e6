"""The devices of the device-parametrised tests: the CPU, and CUDA when present.

Each parameter carries the ``devices`` mark, so ``pytest -m devices -k cuda`` runs exactly the CUDA cases (what
``benchmarks/gpu_check.sh`` does on a GPU machine) and ``-k cpu`` their CPU twins.
"""

import pytest
import torch

DEVICES = [pytest.param("cpu", marks=pytest.mark.devices)]
if torch.cuda.is_available():
    DEVICES.append(pytest.param("cuda", marks=pytest.mark.devices))
