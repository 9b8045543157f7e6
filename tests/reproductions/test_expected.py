"""The paper's numbers the reproductions are compared with are verbatim."""

from dictlab.reproductions.expected import METHOD_ORDER, PAPER_TABLE1, PAPER_TABLE1_SETTING


def test_paper_table1_is_verbatim() -> None:
    assert tuple(PAPER_TABLE1) == METHOD_ORDER
    topk, crosscoder, relu = PAPER_TABLE1["topk"], PAPER_TABLE1["crosscoder"], PAPER_TABLE1["relu"]
    assert (topk.gt_percent, topk.mip, topk.fa_gt_percent, topk.fa_mip) == (84.90, 0.983, 87.63, 0.986)
    assert (crosscoder.gt_percent, crosscoder.fa_mip) == (56.42, 0.941)
    assert relu.gt_below_threshold and not topk.gt_below_threshold
    assert PAPER_TABLE1_SETTING.metric_matrix == "encoder" and PAPER_TABLE1_SETTING.n_q == 16000
