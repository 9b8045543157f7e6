"""Reading, ablating, clamping and steering dictionary latents inside a tiny Llama."""

from pathlib import Path

import pytest
import torch

from dictlab.lm.interventions import (
    Ablate,
    Clamp,
    Steer,
    ablation_effect,
    ablation_effects,
    attach,
    latent_codes,
    token_batch,
)
from dictlab.lm.loading import LanguageModel, load_language_model
from dictlab.models.config import DictionaryConfig
from dictlab.models.dictionary import SparseDictionary

MODULE = "model.layers.0"
TEXTS = [
    "the cat sat on the mat and looked at the dog",
    "a dog ran to the park",
    "one two three four five six seven eight nine ten",
    "hello world",
]
D_SAE = 64


@pytest.fixture(scope="module")
def lm(tiny_lm_dir: Path) -> LanguageModel:
    return load_language_model(tiny_lm_dir)


@pytest.fixture(scope="module")
def lm64(tiny_lm_dir: Path) -> LanguageModel:
    return load_language_model(tiny_lm_dir, dtype=torch.float64)


def _sae(d: int, dtype: torch.dtype = torch.float32, **fields: object) -> SparseDictionary:
    """A random SAE with nonzero biases (b_dec must cancel out of every intervention)."""
    fields = {"kind": "sae", "d_in": d, "d_out": d, "d_sae": D_SAE, "activation": "topk", "k": 4, **fields}
    sae = SparseDictionary(DictionaryConfig(**fields), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        sae.b_dec.copy_(0.1 * torch.randn(d, generator=torch.Generator().manual_seed(1)))
        sae.b_enc.fill_(0.01)
    return sae.to(dtype).eval()


def _outputs(lm: LanguageModel, batch_inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(output [batch, seq, d] of MODULE as the next layer sees it, logits) of one forward pass."""
    seen: list[torch.Tensor] = []
    handle = lm.model.get_submodule(MODULE).register_forward_hook(
        lambda _m, _a, out: seen.append(out[0] if isinstance(out, tuple) else out)
    )
    try:
        with torch.no_grad():
            logits = lm.model(**batch_inputs).logits
    finally:
        handle.remove()
    return seen[0], logits


def _fired_sometimes(codes: torch.Tensor) -> int:
    """A latent nonzero at some but not all rows of codes [n, d_sae]."""
    counts = (codes != 0).sum(dim=0)
    candidates = ((counts > 0) & (counts < codes.shape[0])).nonzero().flatten()
    return int(candidates[counts[candidates].argmax()])


def test_noop_splice_is_exact(lm: LanguageModel) -> None:
    sae = _sae(lm.hidden_size)
    batch = token_batch(lm, TEXTS)
    _, clean = _outputs(lm, batch.model_inputs())
    with attach(lm, MODULE, sae, keep=batch.keep) as attached:
        _, spliced = _outputs(lm, batch.model_inputs())
    assert torch.equal(spliced, clean)
    log_p, log_q = torch.log_softmax(clean.double(), -1), torch.log_softmax(spliced.double(), -1)
    assert (log_p.exp() * (log_p - log_q)).sum().item() == 0.0
    assert not attached.changed.any()
    never = int(((attached.codes != 0).sum(dim=(0, 1)) == 0).nonzero()[0])
    with attach(lm.model, MODULE, sae, keep=batch.keep, interventions=[Ablate(never)]):
        _, unchanged = _outputs(lm, batch.model_inputs())
    assert torch.equal(unchanged, clean)
    assert not lm.model.get_submodule(MODULE)._forward_hooks


def test_codes_are_recorded_at_kept_positions_only(lm: LanguageModel) -> None:
    sae = _sae(lm.hidden_size)
    batch = token_batch(lm, TEXTS, skip_first=1, drop_special=True)
    real = batch.attention_mask.bool()
    assert (~real).any()  # padding
    assert (real & ~batch.keep).sum() == 2 * len(TEXTS)  # [CLS] (special and first) and [SEP] are not kept
    x, _ = _outputs(lm, batch.model_inputs())
    with attach(lm, MODULE, sae, keep=batch.keep) as attached:
        _outputs(lm, batch.model_inputs())
        _outputs(lm, batch.model_inputs())
    assert len(attached.codes_per_pass) == 2
    assert attached.codes.shape == (*batch.keep.shape, D_SAE)
    assert torch.equal(attached.positions, batch.keep)
    assert torch.equal(attached.codes[batch.keep], sae.encode(x[batch.keep]))
    assert torch.equal(attached.codes[~batch.keep], torch.zeros_like(attached.codes[~batch.keep]))
    assert ((attached.codes[batch.keep] != 0).sum(dim=1) == 4).all()

    tokens = latent_codes(lm, MODULE, sae, TEXTS, batch_size=3)
    n = int(batch.keep.sum())
    assert tokens.codes.shape == (n, D_SAE) and tokens.token_ids.shape == (n,)
    assert torch.allclose(tokens.codes, attached.codes[batch.keep], atol=1e-5)  # other batching, same codes
    assert torch.equal(tokens.token_ids, batch.input_ids[batch.keep])
    rows, cols = batch.keep.nonzero().unbind(1)
    assert torch.equal(tokens.text_index, rows) and torch.equal(tokens.positions, cols)  # right padding
    assert int(tokens.positions.min()) == 1
    assert int(latent_codes(lm, MODULE, sae, TEXTS, skip_first=2).positions.min()) == 2


def test_ablation_changes_only_where_the_latent_fired(lm64: LanguageModel) -> None:
    sae = _sae(lm64.hidden_size, torch.float64)
    batch = token_batch(lm64, TEXTS)
    keep = batch.keep
    x, clean_logits = _outputs(lm64, batch.model_inputs())
    codes = sae.encode(x[keep])
    i = _fired_sometimes(codes)
    with attach(lm64, MODULE, sae, keep=keep, interventions=[Ablate(i)]) as attached:
        y, logits = _outputs(lm64, batch.model_inputs())
    fired = torch.zeros_like(keep)
    fired[keep] = codes[:, i] != 0
    assert fired.any() and (keep & ~fired).any()
    assert torch.equal(attached.changed, fired)
    assert torch.equal(y[~fired], x[~fired])  # bit-identical where the latent was 0 (and outside keep)
    expected = -codes[fired[keep], i, None] * sae.W_dec[i]
    assert torch.allclose(y[fired] - x[fired], expected, rtol=1e-10, atol=1e-12)
    assert not torch.equal(logits, clean_logits)

    j = int(((codes[:, i, None] == 0) & (codes != 0)).sum(0).argmax())  # fires where i does not
    both = torch.zeros_like(keep)
    both[keep] = (codes[:, [i, j]] != 0).any(1)
    with attach(lm64, MODULE, sae, keep=keep, interventions=[Ablate([i, j])]):
        z, _ = _outputs(lm64, batch.model_inputs())
    expected = -(codes[both[keep]][:, [i, j]] @ sae.W_dec[[i, j]])
    assert torch.allclose(z[both] - x[both], expected, rtol=1e-10, atol=1e-12)
    assert torch.equal(z[~both], x[~both])


def test_steer_and_clamp_change_exactly_their_direction(lm: LanguageModel) -> None:
    sae = _sae(lm.hidden_size)
    batch = token_batch(lm, TEXTS)
    keep = batch.keep
    x, _ = _outputs(lm, batch.model_inputs())
    scale = float(x.abs().max()) + 5.0  # outputs plus the largest change (decoder rows have unit norm)
    atol = 1e-6 * scale
    where = [(0, 2), (1, 3), (0, 0)]  # (0, 0) is [CLS]: not kept, never touched
    alpha = 3.0
    with attach(lm, MODULE, sae, keep=keep, interventions=[Steer(5, alpha, positions=where)]) as attached:
        y, _ = _outputs(lm, batch.model_inputs())
    steered = torch.zeros_like(keep)
    steered[0, 2] = steered[1, 3] = True
    assert torch.equal(attached.changed, steered)
    assert torch.allclose(y[steered] - x[steered], (alpha * sae.W_dec[5]).expand(2, -1), rtol=0, atol=atol)
    assert torch.equal(y[~steered], x[~steered])

    codes = attached.codes
    mask = keep.clone()
    mask[:, 5:] = False  # clamp at the first positions only
    value = 5.0
    with attach(lm, MODULE, sae, keep=keep, interventions=[Clamp(7, value, positions=mask)]):
        z, _ = _outputs(lm, batch.model_inputs())
    assert mask.any()
    expected = (value - codes[mask][:, 7, None]) * sae.W_dec[7]
    assert torch.allclose(z[mask] - x[mask], expected, rtol=0, atol=atol)
    assert torch.equal(z[~mask], x[~mask])

    # Ablate then steer: the latent's code ends at alpha.
    i = _fired_sometimes(codes[keep])
    with attach(lm, MODULE, sae, keep=keep, interventions=[Ablate(i), Steer(i, alpha)]):
        w, _ = _outputs(lm, batch.model_inputs())
    expected = (alpha - codes[keep][:, i, None]) * sae.W_dec[i]
    assert torch.allclose(w[keep] - x[keep], expected, rtol=0, atol=atol)


def test_ablation_effect(lm: LanguageModel) -> None:
    sae = _sae(lm.hidden_size, activation="relu", k=None)
    text = TEXTS[0]
    ids = torch.tensor(lm.tokenizer(text)["input_ids"])
    codes = latent_codes(lm, MODULE, sae, [text])
    counts = (codes.codes != 0).sum(0)
    never = int((counts == 0).nonzero()[0])
    effect = ablation_effect(lm, MODULE, sae, ids, never)
    assert effect.shape == ids.shape and effect.dtype == torch.float64
    assert torch.isnan(effect[-1]) and torch.equal(effect[:-1], torch.zeros(len(ids) - 1, dtype=torch.float64))

    latent = _fired_sometimes(codes.codes)
    fired_at = codes.positions[codes.codes[:, latent] != 0]
    first, p = int(fired_at[0]), int(fired_at[-1])
    assert p > 2
    effect = ablation_effect(lm, MODULE, sae, ids, latent, p)
    assert torch.equal(effect[:p], torch.zeros(p, dtype=torch.float64))  # causal: nothing before p moves
    assert (effect[p:-1] != 0).any()
    everywhere = ablation_effect(lm, MODULE, sae, ids, latent)
    assert torch.equal(everywhere[:first], torch.zeros(first, dtype=torch.float64))
    assert (everywhere[first:-1] != 0).any()
    assert not torch.equal(everywhere[:-1], effect[:-1])

    short = torch.tensor(lm.tokenizer(TEXTS[1])["input_ids"])
    contexts = [(ids, latent, p), (short, never, None), (ids.tolist(), latent, None), (ids, never, 3)]
    batched = ablation_effects(lm, MODULE, sae, contexts, batch_size=4)
    assert [len(e) for e in batched] == [len(ids), len(short), len(ids), len(ids)]
    assert torch.allclose(batched[0], effect, atol=1e-5, equal_nan=True)
    assert torch.allclose(batched[2], everywhere, atol=1e-5, equal_nan=True)
    assert torch.equal(batched[0][:p], torch.zeros(p, dtype=torch.float64))
    assert torch.equal(batched[1][:-1], torch.zeros(len(short) - 1, dtype=torch.float64))
    assert torch.equal(batched[3][:-1], torch.zeros(len(ids) - 1, dtype=torch.float64))
    two = ablation_effect(lm, MODULE, sae, torch.stack([ids, ids]), latent, p)
    assert two.shape == (2, len(ids)) and torch.allclose(two[1], effect, atol=1e-5, equal_nan=True)


def test_errors(lm: LanguageModel) -> None:
    d = lm.hidden_size
    sae = _sae(d)
    batch = token_batch(lm, TEXTS)
    with pytest.raises(ValueError, match="matches no module"), attach(lm, "model.nothing", sae):
        pass
    with (
        pytest.raises(ValueError, match=f"latent {D_SAE} is out of range"),
        attach(lm, MODULE, sae, interventions=[Ablate(D_SAE)]),
    ):
        pass
    with pytest.raises(ValueError, match="latent -1 is out of range"):
        ablation_effect(lm, MODULE, sae, batch.input_ids[0], -1)
    width = r"d_in \(16\) does not match the module width \(32\) of model.layers.0"
    with pytest.raises(ValueError, match=width), attach(lm, MODULE, _sae(d // 2)):
        _outputs(lm, batch.model_inputs())
    bad_mask = Steer(0, 1.0, positions=batch.keep[:1])
    with pytest.raises(ValueError, match="bool mask of shape"), attach(lm, MODULE, sae, interventions=[bad_mask]):
        _outputs(lm, batch.model_inputs())
    bad_pair = Steer(0, 1.0, positions=[(9, 0)])
    with pytest.raises(ValueError, match="outside the batch"), attach(lm, MODULE, sae, interventions=[bad_pair]):
        _outputs(lm, batch.model_inputs())
    ids = torch.tensor(lm.tokenizer(TEXTS[0])["input_ids"])
    with pytest.raises(ValueError, match="position 0 is never intervened on"):
        ablation_effect(lm, MODULE, sae, ids, 0, 0)  # [CLS]
    with pytest.raises(ValueError, match="outside its"):
        ablation_effect(lm, MODULE, sae, ids, 0, 99)
    transcoder = SparseDictionary(
        DictionaryConfig(kind="transcoder", d_in=d, d_out=d, d_sae=d, activation="relu", apply_b_dec_to_input=False)
    )
    with pytest.raises(ValueError, match="SAE"), attach(lm, MODULE, transcoder):
        pass
    encoder = LanguageModel(model=lm.model, tokenizer=lm.tokenizer, name="encoder", is_causal=False)
    with pytest.raises(ValueError, match="causal LM"):
        ablation_effect(encoder, MODULE, sae, ids, 0)
    assert not lm.model.get_submodule(MODULE)._forward_hooks
