"""The generic HTML helpers of dictlab.report.html."""

import pytest
import torch

from dictlab.report.html import environment_info


def test_environment_info() -> None:
    env = environment_info("cpu")
    for key in ("python", "torch", "numpy", "dictlab", "platform", "device", "torch_threads"):
        assert key in env
    assert env["device"] == "cpu" and env["torch_threads"] == torch.get_num_threads()
    with pytest.raises(ValueError, match="device"):
        environment_info("")
