"""``dictlab reproduce resampling``: dead-latent resampling on real LM activations (Tang et al.'s Figure 7, scaled)."""

from dictlab.reproductions.base import Reproduction
from dictlab.reproductions.resampling.run import ResamplingConfig, ResamplingResults, run_resampling

REPRODUCTION = Reproduction(
    name="resampling",
    config=ResamplingConfig,
    run=run_resampling,
    description="ReLU SAEs on SmolLM2 activations with and without dead-latent resampling: loss and dead fraction "
    "(Fig. 7); needs the lm extra",
    single_threaded=False,
)

__all__ = ["REPRODUCTION", "ResamplingConfig", "ResamplingResults", "run_resampling"]
