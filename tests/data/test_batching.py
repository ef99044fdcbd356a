import pytest
import torch

from hyperdas_tl.data.batching import (
    IGNORE_INDEX,
    collate_examples,
    encode_prompt,
    entity_char_span,
    entity_token_positions,
    judged_label_positions,
    label_positions,
)
from hyperdas_tl.data.examples import InterventionExample


def example(**overrides) -> InterventionExample:
    fields = dict(
        base_prompt='{"city": "Aalborg", "country": "',
        base_entity="Aalborg",
        source_prompt="Last year I moved to Ouagadougou because",
        source_entity="Ouagadougou",
        target_attribute="Country",
        queried_attribute="Country",
        concept="the country of a city",
        label="Burkina Faso",
        base_label="Denmark",
        counterfactual_label="Burkina Faso",
        kind="cause",
    )
    fields.update(overrides)
    return InterventionExample(**fields)


def decoded(tok, text: str, positions: list[int]) -> str:
    ids = tok(text)["input_ids"]
    return tok.decode([ids[p] for p in positions])


def test_multi_token_entity_without_leading_space(smollm2_tok):
    text = '{"city": "Aalborg", "country": "'
    positions = entity_token_positions(smollm2_tok, text, "Aalborg")
    assert len(positions) >= 2
    assert positions == list(range(positions[0], positions[-1] + 1))
    assert decoded(smollm2_tok, text, positions) == "Aalborg"


def test_entity_with_leading_space_and_multiword(smollm2_tok):
    text = " Photo taken in New York City, United States. Photo taken in Rio de Janeiro,"
    positions = entity_token_positions(smollm2_tok, text, "Rio de Janeiro")
    assert decoded(smollm2_tok, text, positions).strip() == "Rio de Janeiro"
    assert smollm2_tok.convert_ids_to_tokens(smollm2_tok(text)["input_ids"][positions[0]])[0] == "Ġ"


def test_entity_appearing_twice_uses_the_last_mention(smollm2_tok):
    text = "Paris is in France. Paris is in"
    start, _ = entity_char_span(text, "Paris")
    assert start == text.rindex("Paris")
    positions = entity_token_positions(smollm2_tok, text, "Paris")
    ids = smollm2_tok(text)["input_ids"]
    assert len(positions) == 1 and positions[0] > 0
    assert smollm2_tok.decode(ids[positions[0]]).strip() == "Paris"


def test_word_boundaries_and_plural_fallback(smollm2_tok):
    text = "Romeo left Rome for Romeo's town"
    assert entity_char_span(text, "Rome") == (11, 15)
    plural = "These early avocados, however, were"
    assert entity_char_span(plural, "avocado") == (12, 19)
    with pytest.raises(ValueError, match="does not occur"):
        entity_char_span(text, "Paris")


def test_joint_tokenisation_puts_the_space_on_the_label(smollm2_tok):
    enc = encode_prompt(smollm2_tok, "Paris is a city in the country of", "Paris", " France")
    assert enc.ids[: enc.n_prompt] == smollm2_tok("Paris is a city in the country of")["input_ids"]
    assert smollm2_tok.convert_ids_to_tokens(enc.ids[enc.n_prompt]) == "ĠFrance"


def test_prompt_ending_in_space(smollm2_tok):
    prompt = "SF has a latitude of 37. Aalborg has a latitude of "
    enc = encode_prompt(smollm2_tok, prompt, "Aalborg", "57", max_label_tokens=3)
    assert smollm2_tok.decode(enc.ids[: enc.n_prompt]) == prompt
    assert smollm2_tok.decode(enc.ids[enc.n_prompt :]) == "57"


def test_collate_alignment_masks_and_padding(smollm2_tok):
    examples = [
        example(),
        example(
            base_prompt="Paris is a city in the country of",
            base_entity="Paris",
            source_prompt="Tokyo",
            source_entity="Tokyo",
            label=" France",
            kind="isolate",
            queried_attribute="Continent",
            concept="the continent of a city",
        ),
    ]
    batch = collate_examples(examples, smollm2_tok, max_label_tokens=2)
    assert len(batch) == 2 and batch.examples == examples
    assert batch.is_cause.tolist() == [True, False]
    for b, ex in enumerate(examples):
        mask = batch.base_attention_mask[b].bool()
        ids = batch.base_ids[b][mask].tolist()
        n_prompt = int(batch.base_intervenable[b].sum())
        assert smollm2_tok.decode(ids[:n_prompt]) == ex.base_prompt
        assert not batch.base_intervenable[b][n_prompt:].any()
        # labels[t] is the token after position t, only on label positions, at most 2 tokens.
        targets = [(t, int(v)) for t, v in enumerate(batch.labels[b]) if v != IGNORE_INDEX]
        assert [t for t, _ in targets] == list(range(n_prompt - 1, len(ids) - 1))
        assert len(targets) <= 2
        assert all(ids[t + 1] == v for t, v in targets)
        assert ex.label.startswith(smollm2_tok.decode([v for _, v in targets]))
        # padding is pad id with mask 0
        assert (batch.base_ids[b][~mask] == smollm2_tok.pad_token_id).all()
        entity_tokens = smollm2_tok.decode(ids[: int(batch.base_entity_last[b]) + 1])
        assert entity_tokens.endswith(ex.base_entity)
        src = batch.source_ids[b][batch.source_attention_mask[b].bool()].tolist()
        assert smollm2_tok.decode(src) == ex.source_prompt
        assert batch.source_intervenable[b].sum() == len(src)
        assert smollm2_tok.decode(src[: int(batch.source_entity_last[b]) + 1]).endswith(
            ex.source_entity
        )
    assert batch.labels[0].ne(IGNORE_INDEX).sum() == 2  # "Burkina Faso" truncated to 2 tokens
    concept = batch.concept_ids[1][batch.concept_attention_mask[1].bool()].tolist()
    assert smollm2_tok.decode(concept) == "the continent of a city"
    assert batch.base_ids.dtype == torch.long and batch.labels.shape == batch.base_ids.shape


def test_collate_errors(smollm2_tok):
    with pytest.raises(ValueError, match="at least one example"):
        collate_examples([], smollm2_tok)
    with pytest.raises(ValueError, match="empty label"):
        collate_examples([example(label="")], smollm2_tok)
    with pytest.raises(ValueError, match="'Oslo' does not occur"):
        collate_examples([example(base_entity="Oslo")], smollm2_tok)


def test_rows_longer_than_the_context_name_the_example(smollm2_tok):
    long = example(base_prompt="word " * 300 + '{"city": "Aalborg", "country": "')
    batch = collate_examples([example(), long], smollm2_tok)  # no n_ctx: no check (as before)
    assert batch.base_ids.shape[1] > 256
    with pytest.raises(
        ValueError, match=r"base prompt \+ label of example Country/cause.*n_ctx=256"
    ):
        collate_examples([example(), long], smollm2_tok, n_ctx=256)
    far_source = example(source_prompt="word " * 300 + "Ouagadougou")
    with pytest.raises(ValueError, match="source of example .* tokens, more than"):
        collate_examples([far_source], smollm2_tok, n_ctx=256)
    assert collate_examples([example()], smollm2_tok, n_ctx=256).base_ids.shape[1] < 256


def test_label_positions_gather_every_label_in_order():
    labels = torch.tensor(
        [
            [-100, 5, 6, 7, -100, -100],
            [-100, -100, -100, 8, -100, -100],
            [9, -100, 10, -100, -100, -100],
        ]
    )
    scored = label_positions(labels)
    # each row's labelled positions first, in order, then filler positions labelled -100
    assert scored.positions[:, :1].tolist() == [[1], [3], [0]]
    assert scored.positions[0].tolist() == [1, 2, 3]
    assert scored.positions[2, :2].tolist() == [0, 2]
    assert scored.labels.tolist() == [[5, 6, 7], [8, -100, -100], [9, 10, -100]]
    assert torch.equal(labels.gather(1, scored.positions), scored.labels)
    judged = label_positions(labels, max_label_tokens=2)
    assert judged.labels.tolist() == [[5, 6], [8, -100], [9, 10]]
    mask = judged_label_positions(labels, 2)
    assert torch.equal(judged.labels[judged.labels != -100], labels[mask])
    none = label_positions(torch.full((2, 4), -100))
    assert none.positions.shape == (2, 0) and none.labels.shape == (2, 0)
