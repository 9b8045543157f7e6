"""Feature absorption: the criterion and the whole SAE-dependent pipeline on a planted case, the LLM plumbing on the
tiny real Llama, and the label-free agreement on planted nested pairs."""

from pathlib import Path

import pytest
import torch

from dictlab.evals.absorption.agreement import AgreementOptions, absorption_agreement
from dictlab.evals.absorption.calculator import CriterionOptions, absorption_verdicts
from dictlab.evals.absorption.first_letter import (
    EVAL_TYPE_ID,
    FirstLetterAbsorptionOptions,
    FirstLetterOptions,
    first_letter_absorption,
    first_letter_data,
)
from dictlab.evals.absorption.probe import fit_probe, probe_report
from dictlab.evals.absorption.prompts import PromptError, WordPrompt, word_token_positions
from dictlab.evals.absorption.summary import absorption_markdown
from dictlab.evals.absorption.words import AbsorptionPair, ClassAbsorption, WordClassData
from dictlab.models.config import DictionaryConfig
from dictlab.models.dictionary import SparseDictionary

D = 24


def _basis(seed: int = 0) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(D, D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q.T.float()  # rows: orthonormal directions


def _relu_sae(enc: torch.Tensor, b_enc: torch.Tensor, dec: torch.Tensor) -> SparseDictionary:
    """A ReLU SAE with given W_enc [d, K], b_enc [K], W_dec [K, d] and b_dec = 0."""
    cfg = DictionaryConfig(d_in=D, d_out=D, d_sae=dec.shape[0], activation="relu", apply_b_dec_to_input=False)
    sae = SparseDictionary(cfg)
    with torch.no_grad():
        sae.W_enc.copy_(enc)
        sae.b_enc.copy_(b_enc)
        sae.W_dec.copy_(dec)
        sae.b_dec.zero_()
    return sae.eval()


def test_verdicts_full_and_partial_absorption() -> None:
    """π = x·p; a main latent silent and one aligned latent carrying the projection is full absorption; a main
    latent carrying a quarter of it leaves an absorption fraction of ¾."""
    e = _basis()
    p, u = e[0], e[1]
    decoder = torch.stack([p, (p + u) / 2**0.5, e[2]])  # main, absorbing, unrelated
    x = (4 * p + 4 * u)[None].repeat(3, 1)
    codes = torch.tensor(
        [
            [0.0, 4 * 2**0.5, 0.0],  # main silent: full absorption, fraction 1
            [1.0, 3 * 2**0.5, 0.0],  # π_main = 1, absorber π = 3 of π = 4: fraction 3/4, not full
            [4.0, 0.0, 1.0],  # main carries it all: no absorption
        ]
    )
    verdicts = absorption_verdicts(x, codes, p, decoder, [0], CriterionOptions())
    assert [v.full_absorption for v in verdicts] == [True, False, False]
    assert verdicts[0].absorption_fraction == pytest.approx(1.0)
    assert verdicts[1].absorption_fraction == pytest.approx(0.75)
    assert verdicts[2].absorption_fraction == 0.0
    assert verdicts[0].absorbers == [1] and verdicts[0].top_latents[0] == 1
    # With two main latents, one of them firing rules full absorption out.
    split = codes[:1].clone()
    split[0, 2] = 0.5
    assert absorption_verdicts(x[:1], codes[:1], p, decoder, [0, 2], CriterionOptions())[0].full_absorption
    assert not absorption_verdicts(x[:1], split, p, decoder, [0, 2], CriterionOptions())[0].full_absorption
    # An absorbing latent orthogonal to the probe is not absorption (cosine below both thresholds).
    orth = decoder.clone()
    orth[1] = u
    assert not any(
        v.full_absorption or v.absorption_fraction
        for v in absorption_verdicts(x, codes, p, orth, [0], CriterionOptions())
    )


def _planted(
    absorb: bool, n: int = 240, seed: int = 1
) -> tuple[WordClassData, SparseDictionary, set[str], dict[str, int]]:
    """Two classes along e0, e1; four child directions e2..e5 each on 4 % of class-0 words. With ``absorb`` the
    SAE's main latent 0 is switched off by the child directions and child latents 2..5 (decoders tilted towards
    e0) fire instead; without, latent 0 fires on every class-0 word and the child latents are orthogonal."""
    g = torch.Generator().manual_seed(seed)
    e = _basis()
    labels = torch.tensor([i % 2 for i in range(n)])
    child = torch.full((n,), -1)
    class0 = (labels == 0).nonzero().flatten()
    for j, row in enumerate(class0.tolist()):
        if j % 25 in (0, 1, 2, 3) and j < 100:  # 16 planted words, 4 per child
            child[row] = j % 25
    x = 3 * e[labels] + 0.05 * torch.randn(n, D, generator=g)
    x[child >= 0] += 3 * e[2 + child[child >= 0]]
    enc = torch.zeros(D, 6)
    b_enc = torch.full((6,), -1.0)
    enc[:, 0] = e[0] - (2 * e[2:6].sum(0) if absorb else 0)
    enc[:, 1] = e[1]
    dec = torch.stack([e[0], e[1], *[(e[0] + e[i]) / 2**0.5 if absorb else e[i] for i in range(2, 6)]])
    for i in range(2, 6):
        enc[:, i] = e[i]
    sae = _relu_sae(enc, b_enc, dec)
    words = [f"w{i}" for i in range(n)]
    train = torch.zeros(n, dtype=torch.bool)
    train[torch.randperm(n, generator=g)[: n // 2]] = True
    probe = fit_probe(x[train], labels[train], 2)
    data = WordClassData(
        task="first_letter",
        model="planted",
        module="m",
        template="{word}",
        class_names=["a", "b"],
        words=words,
        labels=labels,
        train=train,
        prompts=words,
        positions=torch.zeros(n, dtype=torch.long),
        token_ids=torch.zeros(n, dtype=torch.long),
        activations=x,
        probe=probe,
        probe_report=probe_report(probe, x, labels, train, ["a", "b"]),
        seconds=0.0,
    )
    planted = {words[i] for i in (child >= 0).nonzero().flatten().tolist() if not train[i]}
    latent_of = {words[i]: 2 + int(child[i]) for i in (child >= 0).nonzero().flatten().tolist()}
    return data, sae, planted, latent_of


def test_planted_absorption_is_found_exactly() -> None:
    data, sae, planted, latent_of = _planted(absorb=True)
    assert data.probe_report.classes[0].f1 > 0.95  # the probe reads the class
    result = first_letter_absorption(sae, data, FirstLetterAbsorptionOptions(max_listed_words=100))
    letter_a = next(c for c in result.letters if c.name == "a")
    assert letter_a.main_latents == [0]  # each child adds < 3 points of F1: no feature split
    absorbed = {w.word: w for w in letter_a.absorbed_words}
    assert set(absorbed) == planted and len(planted) >= 4
    assert all(w.full_absorption and w.absorbing_latents == [latent_of[name]] for name, w in absorbed.items())
    assert letter_a.num_full_absorption == len(planted)
    assert letter_a.full_absorption_rate == pytest.approx(len(planted) / letter_a.num_probe_true_positives)
    letter_b = next(c for c in result.letters if c.name == "b")
    assert letter_b.num_full_absorption == 0 and letter_b.mean_absorption_fraction == 0
    assert {(p.absorbing, p.main) for p in result.pairs} == {(latent_of[w], 0) for w in planted}
    metrics = result.saebench_metrics()["mean"]
    expected = (letter_a.full_absorption_rate + 0.0) / 2
    assert metrics["mean_full_absorption_score"] == pytest.approx(expected)
    assert [d["first_letter"] for d in result.saebench_details()] == ["a", "b"]
    assert EVAL_TYPE_ID == "absorption_first_letter"
    assert "absorption" in absorption_markdown(result)


def test_no_absorption_without_the_planted_mechanism() -> None:
    """Same words, an SAE whose main latent fires on every class word: nothing is absorbed."""
    data, sae, _, _ = _planted(absorb=False)
    result = first_letter_absorption(sae, data)
    assert all(c.num_full_absorption == 0 and c.mean_absorption_fraction == 0 for c in result.letters)
    assert result.pairs == []


def test_word_position_must_be_one_token() -> None:
    prompt = WordPrompt(word="cat", text="x cat", word_start=2, word_stop=5)
    offsets = torch.tensor([[[0, 1], [1, 3], [3, 5]]])
    with pytest.raises(PromptError, match="spans 2 tokens"):
        word_token_positions(offsets, torch.ones(1, 3), [prompt])


WORDS = ["apple", "ant", "arm", "air", "bed", "bag", "box", "big", "cat", "car", "cup", "cold", "dog", "door", "day"]


def test_first_letter_data_reads_the_word_token(tiny_lm_dir: Path, tmp_path: Path) -> None:
    from dictlab.lm.loading import load_language_model

    lm = load_language_model(tiny_lm_dir)
    word_list = tmp_path / "words"
    word_list.write_text("\n".join([*WORDS, "Capital", "x-ray", "antidisestablishmentarianism"]) + "\n")
    options = FirstLetterOptions(word_list=word_list, min_words_per_class=3, max_icl_examples=3, batch_size=4)
    data = first_letter_data(lm, "model.layers.0", options)
    assert sorted(data.words) == sorted(WORDS)  # capitals, hyphens and multi-token words are left out
    assert data.class_names == ["a", "b", "c", "d"]
    assert data.activations.shape == (len(WORDS), 32)
    assert [data.class_names[c] for c in data.labels.tolist()] == [w[0] for w in data.words]
    for i, (word, text) in enumerate(zip(data.words, data.prompts, strict=True)):
        assert text.endswith(f" {word} has the first letter:") and text.count("\n") == 4
        ids = lm.tokenizer(text, return_tensors="pt")["input_ids"]
        position = int(data.positions[i])
        assert lm.tokenizer.convert_ids_to_tokens(int(ids[0, position])) == word
        assert int(data.token_ids[i]) == int(ids[0, position])
        if i < 3:  # the activation is block 0's output at that token, as the model computes it alone
            with torch.no_grad():
                hidden = lm.model(input_ids=ids, output_hidden_states=True).hidden_states[1]
            torch.testing.assert_close(data.activations[i], hidden[0, position], rtol=1e-4, atol=1e-5)
    report = data.probe_report
    assert report.n_train + report.n_test == len(WORDS)
    assert [c.n_train + c.n_test for c in report.classes] == [4, 4, 4, 3]


def _nested_case() -> tuple[SparseDictionary, torch.Tensor]:
    """Latent 1 fires only inside latent 0's support (nested); latents 2 and 3 fire on disjoint groups."""
    g = torch.Generator().manual_seed(3)
    e = _basis(2)
    scale = 1 + torch.rand(160, 4, generator=g)
    x = torch.zeros(160, D)
    x[:80] += 2 * scale[:80, :1] * e[0]
    x[:30] += 2 * scale[:30, 1:2] * e[1]
    x[80:120] += 2 * scale[80:120, 2:3] * e[2]
    x[120:] += 2 * scale[120:, 3:4] * e[3]
    enc = e[:4].T.clone()
    dec = torch.stack([e[0], (e[0] + e[1]) / 2**0.5, e[2], e[3]])
    return _relu_sae(enc, torch.full((4,), -0.5), dec), x


def test_agreement_on_planted_nested_pair() -> None:
    sae, x = _nested_case()
    pairs = [
        AbsorptionPair(absorbing=1, main=0, class_name="a", words=3, full_words=3),
        AbsorptionPair(absorbing=2, main=3, class_name="b", words=2, full_words=2),
    ]
    classes = [
        ClassAbsorption(
            name=n,
            probe_f1=1.0,
            main_latents=[m],
            k_sparse_f1=[1.0],
            num_split_features=1,
            num_probe_true_positives=1,
            num_full_absorption=1,
            full_absorption_rate=1.0,
            mean_absorption_fraction=1.0,
            absorbed_words=[],
            n_absorbed_words=1,
        )
        for n, m in (("a", 0), ("b", 3))
    ]
    agreement = absorption_agreement(sae, x, pairs, classes, AgreementOptions(lam=0.1))
    assert agreement.n_flagged_pairs == 1  # only {0, 1} is nested; the disjoint groups are not
    assert agreement.n_matched_pairs == 1 and agreement.n_matched_directed == 1
    assert agreement.precision == 1.0 and agreement.recall == 0.5
    assert agreement.latent_recall == 0.5
    assert agreement.label_pair_stats.n_nested == 1
    # Let the child fire outside its parent too: the pair is no longer nested, nothing matches.
    x2 = x.clone()
    x2[120:125] += 3 * sae.W_enc[:, 1].detach()
    broken = absorption_agreement(sae, x2, pairs, classes, AgreementOptions(lam=0.1))
    assert broken.n_matched_pairs == 0 and broken.recall == 0.0


def test_wordnet_lemmas_take_their_most_frequent_sense() -> None:
    from dictlab.evals.absorption.wordnet import lexname_answer, noun_lexnames

    lexnames = noun_lexnames()
    assert lexnames["dog"] == "noun.animal"  # dog.n.01, not the frump or the hot dog
    assert lexnames["car"] == "noun.artifact"
    assert lexnames["oak"] == "noun.plant"
    assert all(w.isalpha() and w.islower() for w in lexnames)
    assert lexname_answer("noun.animal") == " animal"
