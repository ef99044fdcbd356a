import json

import pytest
import torch
from bad_input import raises_bad_input
from synthetic_batches import Row, make_batch

from hyperdas_tl.generation import greedy_generate
from hyperdas_tl.metrics import (
    EvalConfig,
    EvalResult,
    Judgement,
    entity_subspace_intervention,
    evaluate,
    evaluate_interventions,
    example_id,
    judge_generation,
    judge_teacher_forced,
    no_intervention,
    normalise_text,
    prefix_match,
    prompt_lengths,
    results_to_markdown,
    summarise,
    teacher_forced_correct,
)

V = 11


def logits_predicting(predictions: list[list[int]]) -> torch.Tensor:
    """Logits whose argmax at [b, t] is predictions[b][t]."""
    logits = torch.zeros(len(predictions), len(predictions[0]), V)
    for b, row in enumerate(predictions):
        for t, token in enumerate(row):
            logits[b, t, token] = 5.0
    return logits


# ------------------------------------------------------------------ teacher forcing by hand


def test_teacher_forced_all_label_tokens_must_match():
    labels = torch.tensor(
        [
            [-100, 3, 4, 5, -100],  # all three match
            [-100, 3, 4, 5, -100],  # second label token wrong
            [-100, -100, 7, -100, -100],  # one label token, matches
            [-100, -100, 7, -100, -100],  # one label token, wrong
        ]
    )
    predictions = [
        [0, 3, 4, 5, 9],
        [0, 3, 9, 5, 9],
        [1, 1, 7, 1, 1],
        [1, 1, 8, 1, 1],
    ]
    got = teacher_forced_correct(logits_predicting(predictions), labels)
    assert got.tolist() == [True, False, True, False]


def test_teacher_forced_judges_only_the_first_max_label_tokens():
    labels = torch.tensor([[3, 4, 5, 6, -100]])
    fourth_wrong = logits_predicting([[3, 4, 5, 0, 0]])
    assert teacher_forced_correct(fourth_wrong, labels, max_label_tokens=3).tolist() == [True]
    assert teacher_forced_correct(fourth_wrong, labels, max_label_tokens=4).tolist() == [False]
    first_only = logits_predicting([[3, 0, 0, 0, 0]])
    assert teacher_forced_correct(first_only, labels, max_label_tokens=1).tolist() == [True]
    assert teacher_forced_correct(first_only, labels, max_label_tokens=2).tolist() == [False]


def test_teacher_forced_rejects_rows_without_labels_and_bad_shapes():
    with raises_bad_input("at least one label token"):
        teacher_forced_correct(torch.zeros(1, 3, V), torch.full((1, 3), -100))
    with raises_bad_input("disagree"):
        teacher_forced_correct(torch.zeros(1, 3, V), torch.zeros(1, 4, dtype=torch.long))
    with raises_bad_input("max_label_tokens"):
        teacher_forced_correct(torch.zeros(1, 3, V), torch.zeros(1, 3, dtype=torch.long), 0)


# ------------------------------------------------------------------ prefix match by hand


@pytest.mark.parametrize(
    ("generated", "label", "expected"),
    [
        (" Paris, the capital", " Paris", True),
        ("paris", " Paris", True),  # case and surrounding space are normalised
        (" United   States of America", "United States", True),  # whitespace collapsed
        (" Par", " Paris", False),  # generation too short: the whole label must be there
        (" Lyon", " Paris", False),
        ("\n\nEurope.", " Europe", True),
        (" Europeans", " Europe", True),  # a prefix match, as RAVEL's convention
    ],
)
def test_prefix_match(generated, label, expected):
    assert prefix_match(generated, label) is expected


def test_prefix_match_rejects_an_empty_label_and_normalises_unicode():
    with raises_bad_input("empty"):
        prefix_match("anything", "   ")
    assert normalise_text("  ＡＢ\tc ") == "ab c"


# ------------------------------------------------------------------ aggregation by hand


def verdicts(attribute, kind, outcomes, mode="teacher_forced", domain="city", split="test"):
    return [Judgement(domain, attribute, split, kind, mode, ok) for ok in outcomes]


def test_summarise_known_answers():
    judgements = (
        verdicts("Country", "cause", [True, True, True, False])
        + verdicts("Country", "isolate", [True, False])
        + verdicts("Continent", "cause", [True])
        + verdicts("Continent", "isolate", [False, False, False])
        + verdicts("Country", "cause", [False, False], mode="generation")
    )
    attributes, domains = summarise(judgements)
    by_key = {(s.attribute, s.mode): s for s in attributes}
    country = by_key[("Country", "teacher_forced")]
    assert (country.cause, country.isolate, country.disentangle) == (0.75, 0.5, 0.625)
    assert (country.n_cause, country.n_isolate) == (4, 2)
    continent = by_key[("Continent", "teacher_forced")]
    assert (continent.cause, continent.isolate, continent.disentangle) == (1.0, 0.0, 0.5)
    generated = by_key[("Country", "generation")]
    assert (generated.cause, generated.isolate, generated.disentangle) == (0.0, None, None)

    (tf,) = [d for d in domains if d.mode == "teacher_forced"]
    assert tf.cause == pytest.approx((0.75 + 1.0) / 2)
    assert tf.isolate == pytest.approx((0.5 + 0.0) / 2)
    assert tf.disentangle == pytest.approx((0.625 + 0.5) / 2)
    assert set(tf.attributes) == {"Country", "Continent"}
    (gen,) = [d for d in domains if d.mode == "generation"]
    assert (gen.cause, gen.isolate, gen.disentangle) == (0.0, None, None)


def test_result_round_trips_and_renders_every_mode():
    attributes, domains = summarise(
        verdicts("Country", "cause", [True, False])
        + verdicts("Country", "isolate", [True])
        + verdicts("Country", "cause", [True], mode="generation")
        + verdicts("Country", "isolate", [True], mode="generation")
    )
    result = EvalResult(
        "DAS", "entity", ("teacher_forced", "generation"), attributes, domains, {"layer": 3}
    )
    data = json.loads(json.dumps(result.to_dict()))
    assert EvalResult.from_dict(data) == result
    table = results_to_markdown([result, result])
    assert table.count("| DAS | entity | test | teacher_forced | city | Country | 0.500 |") == 2
    assert "| generation | city | *average* | 1.000 | 1.000 | 1.000 | 1 | 1 |" in table
    assert result.attribute("Country", "generation").disentangle == 1.0
    assert result.domain("city", "teacher_forced").disentangle == pytest.approx(0.75)
    with raises_bad_input("expected one score"):
        result.attribute("Language", "generation")


def test_eval_config_validation():
    with raises_bad_input("unknown judging modes"):
        EvalConfig(modes=("argmax",))
    with raises_bad_input("at least one"):
        EvalConfig(modes=())
    with raises_bad_input("max_new_tokens"):
        EvalConfig(max_new_tokens=0)
    config = EvalConfig(modes=("generation",), max_new_tokens=4)
    assert EvalConfig.from_dict(config.to_dict()) == config


# ------------------------------------------------------------------ end to end, tiny model

ENTITY = 2  # the entity sits mid-prompt, so later prompt tokens read the intervened position


@pytest.fixture(scope="module")
def substitution_task(tiny_model):
    """Rows whose labels are known from clean runs.

    At layer 0 the residual is the token embedding, so a full-rank interchange at the entity
    position is exactly "the base prompt with the source's entity token": cause labels are the
    clean greedy continuation of that substituted prompt, isolate labels the base prompt's own.
    """
    g = torch.Generator().manual_seed(1)
    lengths = [5, 7, 6, 5, 7, 6]
    bases = [torch.randint(1000, 3000, (n,), generator=g).tolist() for n in lengths]
    sources = [torch.randint(1000, 3000, (n,), generator=g).tolist() for n in [4, 6, 3, 5, 4, 6]]
    source_entity_last = [1, 4, 2, 0, 3, 5]
    substituted = [
        b[:ENTITY] + [s[i]] + b[ENTITY + 1 :]
        for b, s, i in zip(bases, sources, source_entity_last, strict=True)
    ]

    def clean_greedy(prompts):
        ids = torch.full((len(prompts), max(lengths)), 2)
        mask = torch.zeros_like(ids)
        for r, p in enumerate(prompts):
            ids[r, : len(p)] = torch.tensor(p)
            mask[r, : len(p)] = 1
        return greedy_generate(tiny_model, ids, mask, 3).tolist()

    cf, own = clean_greedy(substituted), clean_greedy(bases)
    decode = tiny_model.tokenizer.decode
    rows = []
    for kind, labels in (("cause", cf), ("isolate", own)):
        for b, s, i, tokens in zip(bases, sources, source_entity_last, labels, strict=True):
            rows.append(
                Row(b, ENTITY, s, i, tokens, kind=kind, label_text=decode(tokens), attribute="A")
            )
    agree = [c == o for c, o in zip(cf, own, strict=True)]
    assert not all(agree), "degenerate task: the substitution never changes the continuation"
    return make_batch(rows), sum(agree) / len(agree)


def test_prompt_lengths_recovered_from_labels(substitution_task):
    batch, _ = substitution_task
    assert prompt_lengths(batch).tolist() == [5, 7, 6, 5, 7, 6] * 2


def test_full_rank_layer0_interchange_is_token_substitution_in_both_modes(
    tiny_model, substitution_task
):
    batch, agree = substitution_task
    swap = entity_subspace_intervention(tiny_model, 0, torch.eye(tiny_model.cfg.d_model))
    config = EvalConfig(max_new_tokens=5, show_progress=False)
    result = evaluate(tiny_model, [batch], swap, method="full swap", config=config)
    for mode in ("teacher_forced", "generation"):
        score = result.attribute("A", mode)
        assert score.cause == 1.0
        assert score.isolate == pytest.approx(agree)
        assert score.disentangle == pytest.approx((1.0 + agree) / 2)
        assert (score.n_cause, score.n_isolate) == (6, 6)


def test_empty_subspace_and_no_intervention_score_the_base_run(tiny_model, substitution_task):
    batch, agree = substitution_task
    empty = entity_subspace_intervention(tiny_model, 1, torch.zeros(tiny_model.cfg.d_model, 0))
    config = EvalConfig(max_new_tokens=4, show_progress=False)
    for intervention in (empty, no_intervention):
        result = evaluate(tiny_model, [batch], intervention, method="control", config=config)
        for mode in ("teacher_forced", "generation"):
            score = result.attribute("A", mode)
            assert score.cause == pytest.approx(agree)
            assert score.isolate == 1.0


def test_judges_agree_row_by_row_and_are_deterministic(tiny_model, substitution_task):
    batch, _ = substitution_task
    swap = entity_subspace_intervention(tiny_model, 0, torch.eye(tiny_model.cfg.d_model))
    tf = judge_teacher_forced(tiny_model, batch, swap)
    gen = judge_generation(tiny_model, batch, swap, max_new_tokens=3)
    assert tf.tolist() == gen.tolist()
    assert torch.equal(tf, judge_teacher_forced(tiny_model, batch, swap))


def test_generation_misses_a_label_longer_than_the_generation(tiny_model, substitution_task):
    batch, _ = substitution_task
    swap = entity_subspace_intervention(tiny_model, 0, torch.eye(tiny_model.cfg.d_model))
    full = judge_generation(tiny_model, batch, swap, max_new_tokens=3)
    one = judge_generation(tiny_model, batch, swap, max_new_tokens=1)
    assert full[:6].all() and not one[:6].all()


def test_evaluate_needs_examples_to_group_by(tiny_model, substitution_task):
    batch, _ = substitution_task
    bare = batch.to("cpu")
    bare.examples = []
    with raises_bad_input("groups rows"):
        evaluate(
            tiny_model,
            [bare],
            no_intervention,
            method="x",
            config=EvalConfig(modes=("teacher_forced",), show_progress=False),
        )


def test_collated_examples_score_end_to_end(tiny_model):
    from hyperdas_tl.data.batching import collate_examples
    from hyperdas_tl.data.examples import InterventionExample

    def example(base_entity, source_entity, kind, label):
        queried = "Country" if kind == "cause" else "Continent"
        return InterventionExample(
            base_prompt=f"{base_entity} is a city in the {queried.lower()} of",
            base_entity=base_entity,
            source_prompt=f"The mayor of {source_entity} said",
            source_entity=source_entity,
            target_attribute="Country",
            queried_attribute=queried,
            concept="the country of a city",
            label=label,
            base_label=label,
            counterfactual_label=label,
            kind=kind,
            split="test_entity",
            domain="city",
        )

    examples = [
        example("Paris", "Tokyo", "cause", " Japan"),
        example("New York City", "Lyon", "isolate", " North America"),
    ]
    batch = collate_examples(examples, tiny_model.tokenizer)
    assert torch.equal(prompt_lengths(batch), batch.base_intervenable.sum(dim=1))
    swap = entity_subspace_intervention(tiny_model, 1, torch.eye(tiny_model.cfg.d_model)[:, :8])
    result = evaluate(
        tiny_model, [batch], swap, method="smoke", config=EvalConfig(show_progress=False)
    )
    assert {(s.mode, s.n_cause, s.n_isolate) for s in result.attributes} == {
        ("teacher_forced", 1, 1),
        ("generation", 1, 1),
    }
    assert result.domain("city", "generation", "test_entity").attributes == ("Country",)


def test_evaluate_keeps_per_example_verdicts_that_pair_across_methods(
    tiny_model, substitution_task
):
    batch, agree = substitution_task
    config = EvalConfig(modes=("teacher_forced",), show_progress=False)
    swap = entity_subspace_intervention(tiny_model, 0, torch.eye(tiny_model.cfg.d_model))
    first = evaluate(tiny_model, [batch], swap, method="full swap", config=config)
    second = evaluate(tiny_model, [batch], no_intervention, method="none", config=config)
    assert len(first.judgements) == len(batch) == len(second.judgements)
    ids = [j.example_id for j in first.judgements]
    assert ids == [example_id(e) for e in batch.examples]
    assert ids == [j.example_id for j in second.judgements]  # the same example, the same id
    assert len(set(ids)) == len(ids) and all(len(i) == 16 for i in ids)
    assert [j.base_entity for j in first.judgements] == [e.base_entity for e in batch.examples]
    cause = [j.correct for j in first.judgements if j.kind == "cause"]
    assert sum(cause) / len(cause) == first.attribute("A", "teacher_forced").cause
    data = json.loads(json.dumps(first.to_dict()))
    assert EvalResult.from_dict(data) == first
    # results saved before judgements were kept still load
    del data["judgements"]
    assert EvalResult.from_dict(data).judgements == []


def test_interventions_scored_together_score_as_one_by_one_and_batch_by_batch(
    tiny_model, substitution_task
):
    batch, _ = substitution_task
    config = EvalConfig(show_progress=False)
    swap = entity_subspace_intervention(tiny_model, 0, torch.eye(tiny_model.cfg.d_model))
    calls: list[tuple[str, int]] = []

    def logged(name, intervention):
        def build(b, width):
            calls.append((name, id(b)))
            return intervention(b, width)

        return build

    batches = [batch, batch.to("cpu")]
    together = evaluate_interventions(
        tiny_model,
        batches,
        {"swap": logged("swap", swap), "none": logged("none", no_intervention)},
        setting="s",
        config=config,
    )
    assert list(together) == ["swap", "none"]
    for name, intervention in (("swap", swap), ("none", no_intervention)):
        alone = evaluate(tiny_model, batches, intervention, method=name, setting="s", config=config)
        assert together[name] == alone
    # each batch (one object) is judged by both, in both modes, before the next batch
    names = [name for name, _ in calls]
    assert names == ["swap", "swap", "none", "none"] * 2
    assert len({ident for _, ident in calls[:4]}) == 1
    with raises_bad_input("no interventions"):
        evaluate_interventions(tiny_model, batches, {}, config=config)
