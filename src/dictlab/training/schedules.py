"""Step-dependent multipliers: learning-rate warm-up/decay and sparsity-coefficient warm-up."""


def lr_multiplier(step: int, total_steps: int, warmup_frac: float, decay_frac: float) -> float:
    """Linear warm-up from 0 over the first ``warmup_frac`` of steps, constant, linear decay to 0 over the last
    ``decay_frac``. ``step`` counts completed steps (0 for the first update)."""
    warmup = int(warmup_frac * total_steps)
    decay = int(decay_frac * total_steps)
    if warmup and step < warmup:
        return (step + 1) / warmup
    if decay and step >= total_steps - decay:
        return max(0.0, (total_steps - step) / decay)
    return 1.0


def warmup_multiplier(step: int, total_steps: int, warmup_frac: float) -> float:
    """Linear ramp from 0 to 1 over the first ``warmup_frac`` of steps, then 1."""
    warmup = int(warmup_frac * total_steps)
    return min(1.0, (step + 1) / warmup) if warmup else 1.0
