"""The logit lens of a decoder row: which tokens a latent's direction promotes and suppresses when it is read out
directly by the model's final norm and unembedding.

The final norm's per-token rescaling is a positive scalar that does not change the ranking of tokens, so a
direction w goes through the norm's linear part only: centring (LayerNorm) and the elementwise gain, then the
unembedding W_U [vocab, d]: scores = W_U · (γ ⊙ w). This is the W_dec·W_U table of SAE dashboards with the gain
folded in.
"""

import torch
from torch import Tensor, nn

FINAL_NORMS = ("model.norm", "transformer.ln_f", "gpt_neox.final_layer_norm", "model.final_layernorm")
"""Where causal LMs of the common families keep their final norm (Llama/Mistral/Qwen, GPT-2, Pythia, Phi)."""


def final_norm(model: nn.Module) -> nn.Module:
    """The final norm before the LM head; ValueError naming the places looked at when there is none."""
    for name in FINAL_NORMS:
        try:
            module = model.get_submodule(name)
        except AttributeError:
            continue
        if isinstance(getattr(module, "weight", None), Tensor):
            return module
    raise ValueError(f"found no final norm in {type(model).__name__} (looked for {', '.join(FINAL_NORMS)})")


def through_final_norm(model: nn.Module, directions: Tensor) -> Tensor:
    """``directions`` [n, d] through the final norm's linear part (centring for LayerNorm, then the gain)."""
    norm = final_norm(model)
    out = directions
    if isinstance(norm, nn.LayerNorm) or getattr(norm, "bias", None) is not None:
        out = out - out.mean(dim=-1, keepdim=True)
    weight = norm.weight
    assert isinstance(weight, Tensor)
    return out * weight.to(dtype=out.dtype, device=out.device)


@torch.no_grad()
def logit_lens(model: nn.Module, W_dec: Tensor, n: int, block: int = 1024) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Top and bottom ``n`` tokens of every decoder row: (top ids [d_sae, n], top scores, bottom ids, bottom
    scores), scores = W_U · norm(w) in logit units; ``W_dec``: [d_sae, d_model] of a causal LM's hidden width."""
    get_head = getattr(model, "get_output_embeddings", None)
    head = get_head() if callable(get_head) else None
    W_U = getattr(head, "weight", None)
    if not isinstance(W_U, Tensor):
        raise ValueError(f"{type(model).__name__} has no output embedding (the logit lens needs a causal LM head)")
    if W_U.shape[1] != W_dec.shape[1]:
        raise ValueError(
            f"the decoder rows have width {W_dec.shape[1]} but the unembedding expects {W_U.shape[1]}: the logit "
            "lens needs a dictionary of the model's residual stream"
        )
    W_U = W_U.float()
    parts: list[list[Tensor]] = [[], [], [], []]
    for start in range(0, W_dec.shape[0], block):
        scores = through_final_norm(model, W_dec[start : start + block].float().to(W_U.device)) @ W_U.T
        top = torch.topk(scores, n, dim=1)
        bottom = torch.topk(scores, n, dim=1, largest=False)
        for part, value in zip(parts, (top.indices, top.values, bottom.indices, bottom.values), strict=True):
            part.append(value.cpu())
    top_ids, top_scores, bottom_ids, bottom_scores = (torch.cat(part) for part in parts)
    return top_ids, top_scores, bottom_ids, bottom_scores
