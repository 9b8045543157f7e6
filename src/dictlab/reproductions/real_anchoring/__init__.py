"""``dictlab reproduce real-anchoring``: class-mean anchors on real sentence embeddings (the analogue of Tang et
al.'s Table 2, arXiv 2512.05534)."""

from dictlab.reproductions.base import Reproduction
from dictlab.reproductions.real_anchoring.run import RealAnchoringConfig, RealAnchoringResults, run_real_anchoring

REPRODUCTION = Reproduction(
    name="real-anchoring",
    config=RealAnchoringConfig,
    run=run_real_anchoring,
    description="class-mean anchors on MiniLM sentence embeddings of WordNet glosses, 26 lexnames (Tang et al. "
    "Table 2); needs the lm extra",
    single_threaded=False,
)

__all__ = ["REPRODUCTION", "RealAnchoringConfig", "RealAnchoringResults", "run_real_anchoring"]
