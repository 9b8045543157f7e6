"""Shared builders of the diagnostics tests (tests/diagnostics/): the planted hierarchy data and its λ."""

import torch

LAM = 0.05


def hierarchy_data(seed: int = 0, n: int = 3000) -> tuple[torch.Tensor, torch.Tensor]:
    """Exp 1 of the reference: orthogonal parent/child/other in D = 8; child fires only with its parent."""
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(8, 8, generator=g, dtype=torch.float64))
    gt = Q[:3]

    def mag() -> torch.Tensor:
        return 0.5 + torch.rand(n, generator=g, dtype=torch.float64)

    u = torch.rand(n, generator=g, dtype=torch.float64)
    parent_on, child_on = u < 0.45, u < 0.15
    other_on = torch.rand(n, generator=g, dtype=torch.float64) < 0.3
    codes = torch.stack([parent_on * mag(), child_on * mag(), other_on * mag()], dim=1)
    X = codes @ gt + 0.01 * torch.randn(n, 8, generator=g, dtype=torch.float64)
    return X, gt


def failing(checks) -> list[str]:
    return [c.name for c in checks if not c.holds]
