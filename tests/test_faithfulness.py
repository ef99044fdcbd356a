"""Faithfulness controls on the tiny random Llama: the properties that must hold exactly.

A random target knows no country, so the scores here are not the point; what is checked is that
each control builds the intervention it claims to (source == base, zeroed source, random
orthonormal basis, nonsense entity, random-init target) and returns well-formed results.
"""

import json

import pytest
import torch
from bad_input import raises_bad_input
from torch import nn

from hyperdas_tl.data.batching import collate_examples, entity_token_positions
from hyperdas_tl.data.examples import InterventionExample
from hyperdas_tl.faithfulness import (
    Score,
    faithfulness_suite,
    householder_vectors,
    intervened_logits,
    nonsense_source_batches,
    nonsense_source_control,
    own_state_mass,
    pca_2d,
    random_init_copy,
    random_orthonormal_basis,
    random_subspace_control,
    random_target_control,
    replace_entity,
    score_hyperdas,
    selection_statistics,
    soft_hard_gap,
    soft_selection_summary,
    source_equals_base_batch,
    source_equals_base_control,
    target_states_for,
    zero_source_control,
)
from hyperdas_tl.hyperdas.config import HyperDASConfig
from hyperdas_tl.hyperdas.intervention import hyperdas_intervention
from hyperdas_tl.hyperdas.model import HyperDAS
from hyperdas_tl.hyperdas.selection import keep_masked_base
from hyperdas_tl.metrics import EvalConfig, evaluate

CITIES = [("Paris", " France", " Europe"), ("Tokyo", " Japan", " Asia"),
          ("Lima", " Peru", " South America"), ("Cairo", " Egypt", " Africa")]  # fmt: skip
TEMPLATES = {
    "Country": "The city of {} is in the country of",
    "Continent": "{} is a city on the continent of",
}


def example(base: int, source: int, attribute: str, queried: str) -> InterventionExample:
    base_city, source_city = CITIES[base], CITIES[source]
    column = 1 if queried == "Country" else 2
    kind = "cause" if attribute == queried else "isolate"
    counterfactual = source_city[column]
    return InterventionExample(
        base_prompt=TEMPLATES[queried].format(base_city[0]),
        base_entity=base_city[0],
        source_prompt=f"Tourists love {source_city[0]} in spring.",
        source_entity=source_city[0],
        target_attribute=attribute,
        queried_attribute=queried,
        concept=f"the {attribute.lower()} of a city",
        label=counterfactual if kind == "cause" else base_city[column],
        base_label=base_city[column],
        counterfactual_label=counterfactual,
        kind=kind,
        split="test_entity",
    )


def build_examples() -> list[InterventionExample]:
    out = []
    for base, source in [(0, 1), (1, 2), (2, 3), (3, 0)]:
        for attribute in ("Country", "Continent"):
            for queried in ("Country", "Continent"):
                out.append(example(base, source, attribute, queried))
    return out


def build_config(**overrides) -> HyperDASConfig:
    defaults = dict(target_model="tiny-llama", layer=2, k=4, n_hypernet_layers=2,
                    n_selection_heads=4, n_steps=2, eval_every=1, val_batches=1)  # fmt: skip
    defaults.update(overrides)
    return HyperDASConfig.build(**defaults)


@pytest.fixture(scope="module")
def batches(tiny_model):
    examples = build_examples()
    return [collate_examples(examples[i : i + 6], tiny_model.tokenizer) for i in range(0, 16, 6)]


@pytest.fixture(scope="module")
def hyperdas(tiny_model):
    model = HyperDAS(tiny_model, build_config())
    with torch.no_grad():  # move away from the near-identity init so selections are non-trivial
        torch.manual_seed(1)
        for p in model.selection.parameters():
            p.add_(0.5 * torch.randn_like(p))
    return model.eval()


class DiagonalSelection(nn.Module):
    """Every intervenable base position reads the source position with the same index."""

    def forward(self, encoding, base, source, base_mask, source_mask):
        batch, base_pos, src_pos = base.shape[0], base.shape[1], source.shape[1]
        weights = torch.zeros(batch, src_pos + 1, base_pos, dtype=base.dtype)
        weights[:, -1] = 1.0
        for j in range(min(src_pos, base_pos)):
            ok = base_mask[:, j].bool() & source_mask[:, j].bool()
            weights[ok, j, j] = 1.0
            weights[ok, -1, j] = 0.0
        return keep_masked_base(weights + 0 * encoding.sum(), base_mask)


def test_score_hyperdas_matches_the_metrics_path(hyperdas, tiny_model, batches):
    """The controls' fast scoring (HyperDAS.forward logits, shared states) gives the verdicts of
    metrics.evaluate with hyperdas_intervention."""
    config = EvalConfig(modes=("teacher_forced",), show_progress=False)
    states = target_states_for(hyperdas, batches)
    for mode in ("soft", "one_to_many"):
        fast = score_hyperdas(hyperdas, batches, mode, states=states)
        slow = evaluate(tiny_model, batches, hyperdas_intervention(hyperdas, mode), method="x",
                        config=config)  # fmt: skip
        assert fast.attributes == slow.attributes
        fast_zero = score_hyperdas(hyperdas, batches, mode, states=states, zero_source=True)
        slow_zero = evaluate(tiny_model, batches,
                             hyperdas_intervention(hyperdas, mode, zero_source=True), method="x",
                             config=config)  # fmt: skip
        assert fast_zero.attributes == slow_zero.attributes


def test_source_equals_base_batch_copies_the_base_prompt(batches):
    batch = batches[0]
    same = source_equals_base_batch(batch)
    for row, e in enumerate(same.examples):
        n = int(batch.base_intervenable[row].sum())
        assert torch.equal(same.source_ids[row, :n], batch.base_ids[row, :n])
        assert same.source_attention_mask[row].sum() == n
        assert torch.equal(same.source_intervenable[row], same.source_attention_mask[row].bool())
        assert e.source_prompt == e.base_prompt and e.source_entity == e.base_entity
    assert torch.equal(same.source_entity_last, batch.base_entity_last)
    assert torch.equal(same.base_ids, batch.base_ids) and torch.equal(same.labels, batch.labels)


def test_source_equals_base_is_exactly_unchanged_for_same_position_selections(tiny_model, batches):
    model = HyperDAS(tiny_model, build_config()).eval()
    model.selection = DiagonalSelection()
    result = source_equals_base_control(model, batches)
    for mode in ("soft", "one_to_many", "one_to_one"):
        assert result.own_state_mass[mode] == pytest.approx(1.0)
        assert result.unchanged[mode] == 1.0
        assert result.max_logit_change[mode] < 1e-3
    assert result.n_examples == sum(len(b) for b in batches)
    json.dumps(result.to_dict())


def test_source_equals_base_on_a_mixing_selection_reports_its_own_mass(hyperdas, batches):
    result = source_equals_base_control(hyperdas, batches, selection_modes=("soft",))
    assert 0.0 <= result.unchanged["soft"] <= 1.0
    assert 0.0 < result.own_state_mass["soft"] < 1.0  # a perturbed soft selection mixes positions


def test_own_state_mass():
    selection = torch.zeros(1, 4, 3)
    selection[0, 3, 0] = 1.0  # base 0 keeps itself (null)
    selection[0, 1, 1] = 1.0  # base 1 reads source 1 (same position)
    selection[0, 0, 2] = 1.0  # base 2 reads source 0 (another position)
    mass = own_state_mass(selection, torch.tensor([[True, True, True]]))
    assert mass.item() == pytest.approx(2 / 3)


@pytest.mark.parametrize("batch", [None, 5])
def test_random_orthonormal_basis(batch):
    generator = torch.Generator().manual_seed(0)
    basis = random_orthonormal_basis(16, 4, batch=batch, generator=generator)
    assert basis.shape == ((16, 4) if batch is None else (batch, 16, 4))
    gram = basis.transpose(-1, -2) @ basis
    assert torch.allclose(gram, torch.eye(4).expand_as(gram), atol=1e-5)
    again = random_orthonormal_basis(16, 4, batch=batch, generator=torch.Generator().manual_seed(0))
    assert torch.equal(basis, again)
    with raises_bad_input("k must be"):
        random_orthonormal_basis(4, 5)


@pytest.mark.parametrize("per_example", [True, False])
def test_random_subspace_control(hyperdas, batches, per_example):
    result = random_subspace_control(hyperdas, batches, seed=3, per_example=per_example)
    assert result.k == 4 and result.orthonormality_error < 1e-4
    for score in (result.hyperdas, result.random_subspace):
        assert 0.0 <= score.cause <= 1.0 and 0.0 <= score.isolate <= 1.0
    again = random_subspace_control(hyperdas, batches, seed=3, per_example=per_example)
    assert again.random_subspace == result.random_subspace
    json.dumps(result.to_dict())


def test_random_basis_changes_the_run(hyperdas, batches):
    batch = batches[0]
    own = intervened_logits(hyperdas, batch, "soft")
    other = intervened_logits(
        hyperdas, batch, "soft",
        basis_override=lambda b: random_orthonormal_basis(b.shape[1], b.shape[2], batch=b.shape[0]),
    )  # fmt: skip
    same = intervened_logits(hyperdas, batch, "soft", basis_override=lambda b: b)
    real = batch.base_attention_mask.bool()
    assert torch.allclose(same[real], own[real], atol=1e-4)
    assert not torch.allclose(other[real], own[real], atol=1e-4)


def test_zero_source_control_is_finite(hyperdas, batches):
    states = target_states_for(hyperdas, batches)
    before = [s.source.resid_pre.clone() for s in states]
    result = zero_source_control(hyperdas, batches, states=states)
    assert result.finite
    assert 0.0 <= result.zero_source.cause <= 1.0
    assert all(torch.equal(b, s.source.resid_pre) for b, s in zip(before, states, strict=True))
    json.dumps(result.to_dict())


def test_replace_entity():
    assert replace_entity("Paris is in Paris, France", "Paris", "Zorb") == "Zorb is in Zorb, France"
    assert replace_entity("Romeo met Rome", "Rome", "Zorb") == "Romeo met Zorb"
    with raises_bad_input("does not occur"):
        replace_entity("Tokyo", "Paris", "Zorb")


def test_nonsense_recollation_replaces_the_source_entity(tiny_model, batches):
    tokenizer = tiny_model.tokenizer
    rewritten = nonsense_source_batches(batches, tokenizer, "Zorblaxia")
    originals = [e for b in batches for e in b.examples if e.is_cause]
    examples = [e for b in rewritten for e in b.examples]
    assert len(examples) == len(originals) and all(e.is_cause for e in examples)
    for old, new in zip(originals, examples, strict=True):
        assert old.source_entity not in new.source_prompt and "Zorblaxia" in new.source_prompt
        assert new.source_entity == "Zorblaxia"
        assert (new.label, new.counterfactual_label) == (old.label, old.counterfactual_label)
        assert new.base_prompt == old.base_prompt
    batch = rewritten[0]
    for row, e in enumerate(batch.examples):
        last = entity_token_positions(tokenizer, e.source_prompt, "Zorblaxia")[-1]
        assert batch.source_entity_last[row] == last
    with raises_bad_input("nonsense"):
        nonsense_source_batches(batches, tokenizer, "  ")


def test_nonsense_source_control(hyperdas, tiny_model, batches):
    result = nonsense_source_control(hyperdas, batches, tiny_model.tokenizer)
    assert result.n_examples == sum(e.is_cause for b in batches for e in b.examples)
    for rate in (result.original_cause, result.counterfactual_label_rate, result.base_label_rate):
        assert 0.0 <= rate <= 1.0
    assert "Zorblaxia" in result.samples[0]["source_prompt"]
    json.dumps(result.to_dict())


def test_random_init_copy(tiny_model):
    copy_a = random_init_copy(tiny_model, seed=1)
    copy_b = random_init_copy(tiny_model, seed=1)
    copy_c = random_init_copy(tiny_model, seed=2)
    real = dict(tiny_model.original_model.named_parameters())
    a = dict(copy_a.original_model.named_parameters())
    assert real.keys() == a.keys()
    assert all(real[n].shape == a[n].shape for n in real)
    assert copy_a.tokenizer is tiny_model.tokenizer
    name = next(n for n in real if "q_proj" in n)
    assert torch.equal(a[name], dict(copy_b.original_model.named_parameters())[name])
    assert not torch.equal(a[name], dict(copy_c.original_model.named_parameters())[name])
    assert not torch.equal(a[name], real[name])
    assert not any(p.requires_grad for p in copy_a.parameters())


def test_random_target_control_runs(hyperdas, batches):
    # a checkpoint trained with periodic saving records checkpoint_every; the control ignores it
    config = hyperdas.config
    hyperdas.config = config.with_fields(checkpoint_every=1)
    try:
        result = random_target_control(hyperdas, batches, batches, n_steps=2)
    finally:
        hyperdas.config = config
    assert result.n_steps == 2 and len(result.loss) == 2
    assert all(torch.isfinite(torch.tensor(result.loss)))
    for score in (result.real, result.random_target, result.random_target_clean):
        assert 0.0 <= score.cause <= 1.0
    json.dumps(result.to_dict())
    with raises_bad_input("hypernetwork_init"):
        random_target_control(hyperdas, batches, batches, hypernetwork_init="copied")  # type: ignore[arg-type]


class EntitySelection(nn.Module):
    """Each base entity token reads the source's last entity token; all else keeps the base."""

    def __init__(self, base_entity, source_entity_last):
        super().__init__()
        self.base_entity, self.source_last = base_entity, source_entity_last

    def forward(self, encoding, base, source, base_mask, source_mask):
        batch, base_pos, src_pos = base.shape[0], base.shape[1], source.shape[1]
        weights = torch.zeros(batch, src_pos + 1, base_pos)
        weights[:, -1] = 1.0
        for row in range(batch):
            for j in self.base_entity[row]:
                weights[row, -1, j] = 0.0
                weights[row, self.source_last[row], j] = 1.0
        return weights + 0 * encoding.sum()


def test_selection_statistics_find_entity_mass(tiny_model, batches):
    batch = batches[0]
    tokenizer = tiny_model.tokenizer
    entity = [
        entity_token_positions(tokenizer, e.base_prompt, e.base_entity) for e in batch.examples
    ]
    # these prompts start with the entity, so position 0 must be readable and writable here
    model = HyperDAS(tiny_model, build_config(skip_attention_sink=False)).eval()
    model.selection = EntitySelection(entity, batch.source_entity_last)
    stats = selection_statistics(model, [batch])
    for mode in ("soft", "one_to_many"):
        read = stats.read_outs[mode]
        assert read.base_entity_share == pytest.approx(1.0)
        assert read.source_entity_share == pytest.approx(1.0)
        n_entity = sum(len(p) for p in entity)
        assert read.replaced_per_example == pytest.approx(n_entity / len(batch))
    assert 0.0 < stats.base_entity_token_share < 1.0
    json.dumps(stats.to_dict())


def test_selection_statistics_ranges(hyperdas, batches):
    stats = selection_statistics(hyperdas, batches, n_top=3)
    for read in stats.read_outs.values():
        assert 0.0 <= read.base_entity_share <= 1.0 and 0.0 <= read.source_entity_share <= 1.0
        assert len(read.top_base_tokens) <= 3


def test_soft_hard_gap(hyperdas, batches):
    gap = soft_hard_gap(hyperdas, batches)
    soft, hard = gap.scores["soft"], gap.scores["one_to_many"]
    assert gap.gaps["one_to_many"]["cause"] == pytest.approx(soft.cause - hard.cause)
    assert set(gap.gaps) == {"one_to_many", "one_to_one"}
    json.dumps(gap.to_dict())


def test_householder_vectors(hyperdas, batches):
    result = householder_vectors(hyperdas, batches)
    n = sum(len(b) for b in batches)
    assert result.vectors.shape == (n, 64) and result.projection.shape == (n, 2)
    assert torch.allclose(result.vectors.norm(dim=-1), torch.ones(n), atol=1e-4)
    assert result.attributes == [e.target_attribute for b in batches for e in b.examples]
    assert 0.0 <= result.centroid_accuracy <= 1.0
    assert sum(result.explained_variance) <= 1.0 + 1e-6
    assert set(result.mean_cosine) == {"Continent", "Country", "Continent|Country"}
    json.dumps(result.to_dict())


def test_pca_2d_finds_the_main_axis():
    points = torch.zeros(6, 5)
    points[:, 2] = torch.tensor([-3.0, -2, -1, 1, 2, 3])
    projection, (first, second) = pca_2d(points)
    assert first == pytest.approx(1.0) and second == pytest.approx(0.0, abs=1e-9)
    assert torch.allclose(projection[:, 0].abs(), points[:, 2].abs(), atol=1e-5)
    with raises_bad_input("two vectors"):
        pca_2d(torch.zeros(1, 3))


def test_score_of_macro_averages(hyperdas, batches):
    result = score_hyperdas(hyperdas, batches)
    score = Score.of(result)
    causes = [s.cause for s in result.attributes]
    assert score.cause == pytest.approx(sum(causes) / len(causes))


def test_bad_inputs(hyperdas, batches, tiny_model):
    with raises_bad_input("empty"):
        zero_source_control(hyperdas, [])
    with raises_bad_input("selection_mode"):
        random_subspace_control(hyperdas, batches, selection_mode="fuzzy")  # type: ignore[arg-type]
    with raises_bad_input("precomputed states"):
        zero_source_control(hyperdas, batches, states=target_states_for(hyperdas, batches[:1]))
    bare = [batches[0]]
    bare[0] = type(bare[0])(**{**bare[0].__dict__, "examples": []})
    with raises_bad_input("InterventionExamples"):
        nonsense_source_control(hyperdas, bare, tiny_model.tokenizer)


def test_soft_selection_summary_reads_the_entity_weights(tiny_model, batches):
    batch = batches[0]
    tokenizer = tiny_model.tokenizer
    entity = [
        entity_token_positions(tokenizer, e.base_prompt, e.base_entity) for e in batch.examples
    ]
    model = HyperDAS(tiny_model, build_config(skip_attention_sink=False)).eval()
    model.selection = EntitySelection(entity, batch.source_entity_last)
    summary = soft_selection_summary(model, batch)
    last_entity = [p[-1] for p in entity]
    assert last_entity == batch.base_entity_last.tolist()
    assert summary.entity_to_entity_mass == pytest.approx(1.0)
    assert summary.null_mass_at_base_entity == pytest.approx(0.0)
    assert summary.max_source_weight_max == pytest.approx(1.0)
    n_base = int(model.position_masks(batch)[0].sum())
    n_entity = sum(len(p) for p in entity)
    assert summary.max_source_weight_mean == pytest.approx(n_entity / n_base)
    assert summary.null_weight_mean == pytest.approx(1 - n_entity / n_base)
    assert set(json.loads(json.dumps(summary.to_dict()))) == {
        "max_source_weight_mean", "max_source_weight_max", "null_weight_mean",
        "entity_to_entity_mass", "null_mass_at_base_entity",
    }  # fmt: skip


def test_the_suite_runs_every_control_as_the_single_calls_do(hyperdas, batches):
    """faithfulness_suite = each control called on its own with the same arguments (what
    run_faithfulness.py and notebook 4 both call)."""
    suite = faithfulness_suite(
        hyperdas, {"test_entity": batches, "empty": []}, batches, seed=3,
        random_target_split="test_entity", random_target_steps=2,
    )  # fmt: skip
    assert list(suite.splits) == ["test_entity"]  # the empty split is skipped
    controls = suite.splits["test_entity"]
    states = target_states_for(hyperdas, batches)
    reference = {mode: score_hyperdas(hyperdas, batches, mode) for mode in ("soft",)}
    assert controls.hyperdas["soft"] == Score.of(reference["soft"])
    alone = {
        "source_equals_base": source_equals_base_control(hyperdas, batches, states=states),
        "random_subspace": random_subspace_control(hyperdas, batches, 3, states=states),
        "zero_source": zero_source_control(hyperdas, batches, states=states),
        "nonsense_source": nonsense_source_control(hyperdas, batches, hyperdas.target.tokenizer),
        "selection": selection_statistics(hyperdas, batches, states=states),
        "soft_hard_gap": soft_hard_gap(hyperdas, batches),
        "householder": householder_vectors(hyperdas, batches, states=states),
    }
    for name, result in alone.items():
        assert getattr(controls, name).to_dict() == result.to_dict(), name
    rt = random_target_control(hyperdas, batches, batches, seed=3, n_steps=2)
    assert suite.random_target.to_dict() == rt.to_dict()
    data = json.loads(json.dumps(suite.to_dict()))
    assert list(data["splits"]["test_entity"])[:3] == [
        "n_examples",
        "hyperdas",
        "majority_label_rate",
    ]
    assert "reference" not in data["splits"]["test_entity"]
    assert "loss_first" in data["random_target"]  # the nested result's own to_dict
    assert set(controls.seconds) >= {"states", "hyperdas", "householder"}
    with raises_bad_input("random-init target"):
        faithfulness_suite(hyperdas, {"test_entity": []}, batches)
