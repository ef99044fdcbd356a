"""A planted concept on a hand-shaped tiny model, for the end-to-end learning test.

The tiny random Llama is made transparent: every block's output projections (attention ``o``
and MLP ``down``) are zeroed, so the residual stream at every layer is the token embedding,
and the tied unembedding then predicts "the current token". A few *entity* tokens get
embeddings ``c + R* z_i``: a shared component ``c`` (so entities are recognisable) plus an
entity-specific part inside a planted ``k*``-dimensional subspace ``R*``.

Every base prompt ends with an entity, so the unintervened model predicts that base entity.
Interchanging span(R*) at the base's last position with the source's entity position turns the
state into the source entity's embedding, so the label is the *source* entity: it can only come
from the source, through the right position pair and the right subspace. Base and source
entities always differ, so the unintervened accuracy is exactly 0.
"""

import torch

from hyperdas_tl.data.batching import IGNORE_INDEX, InterventionBatch
from hyperdas_tl.interchange import interchange
from hyperdas_tl.models import load_model, tiny_llama_config
from hyperdas_tl.partial_forward import resid_stream_states, run_from_layer

ENTITIES = tuple(range(1000, 1008))
FILLERS = tuple(range(5000, 5020))
CONCEPT = (300, 301, 302)
PROMPT_LEN = 5


def planted_target(k_star: int = 4, seed: int = 0):
    """The transparent tiny model and its planted subspace ``R*`` ``[d_model, k*]``."""
    target = load_model("tiny-llama", device="cpu", tiny_config=tiny_llama_config())
    d_model = int(target.cfg.d_model)
    g = torch.Generator().manual_seed(seed)
    r_star = torch.linalg.qr(torch.randn(d_model, d_model, generator=g)).Q
    planted, rest = r_star[:, :k_star], r_star[:, k_star:]
    with torch.no_grad():
        for block in target.blocks:
            block.attn.o.original_component.weight.zero_()
            block.mlp.out.original_component.weight.zero_()
        shared = rest @ torch.randn(d_model - k_star, generator=g)
        shared = 0.5 * shared / shared.norm()
        weight = target.embed.original_component.weight
        for token in ENTITIES:
            z = planted @ torch.randn(k_star, generator=g)
            weight[token] = shared + 0.87 * z / z.norm()
    return target, planted


def planted_batches(
    target, r_star: torch.Tensor, n: int, batch_size: int, seed: int
) -> list[InterventionBatch]:
    """``n`` cause examples (labels from the planted interchange), in batches."""
    g = torch.Generator().manual_seed(seed)
    ent, fill = torch.tensor(ENTITIES), torch.tensor(FILLERS)
    base = fill[torch.randint(0, len(fill), (n, PROMPT_LEN), generator=g)]
    source = fill[torch.randint(0, len(fill), (n, PROMPT_LEN), generator=g)]
    base_entity = torch.randint(0, len(ent), (n,), generator=g)
    shift = torch.randint(1, len(ent), (n,), generator=g)
    source_entity = (base_entity + shift) % len(ent)
    source_pos = torch.randint(1, PROMPT_LEN, (n,), generator=g)  # never the sink
    rows = torch.arange(n)
    base[:, -1] = ent[base_entity]
    source[rows, source_pos] = ent[source_entity]
    layer = 2
    with torch.no_grad():
        base_l = resid_stream_states(target, base, None, [layer]).at(layer)
        source_l = resid_stream_states(target, source, None, [layer]).at(layer)
        patched = torch.cat(
            [
                base_l[:, :-1],
                interchange(base_l[:, -1:], source_l[rows, source_pos][:, None], r_star),
            ],
            dim=1,
        )
        label = run_from_layer(target, patched, layer)[:, -1].argmax(-1)
    batches = []
    for start in range(0, n, batch_size):
        sl = slice(start, start + batch_size)
        m = base[sl].shape[0]
        ids = torch.cat([base[sl], label[sl, None]], dim=1)
        labels = torch.full_like(ids, IGNORE_INDEX)
        labels[:, PROMPT_LEN - 1] = label[sl]
        intervenable = torch.ones_like(ids, dtype=torch.bool)
        intervenable[:, PROMPT_LEN:] = False
        batches.append(
            InterventionBatch(
                base_ids=ids,
                base_attention_mask=torch.ones_like(ids),
                base_intervenable=intervenable,
                base_entity_last=torch.full((m,), PROMPT_LEN - 1),
                source_ids=source[sl],
                source_attention_mask=torch.ones_like(source[sl]),
                source_intervenable=torch.ones_like(source[sl], dtype=torch.bool),
                source_entity_last=source_pos[sl],
                labels=labels,
                is_cause=torch.ones(m, dtype=torch.bool),
                concept_ids=torch.tensor([CONCEPT]).expand(m, -1),
                concept_attention_mask=torch.ones(m, len(CONCEPT), dtype=torch.long),
            )
        )
    return batches
