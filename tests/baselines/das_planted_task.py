"""A tiny Llama with a *planted* attribute subspace, and RAVEL-shaped examples on it.

The model's blocks add nothing (attention and MLP output projections are zero), so
``hook_resid_pre`` at every layer is the token embedding and the logits are the unembedding
matrix times the RMS-normalised residual. Embeddings are built in an orthonormal frame
``Q`` of the residual stream:

- attribute A (4 values) lives in ``U_A = Q[:, 0:2]``, attribute B (4 values) in
  ``U_B = Q[:, 2:4]``; value ``v`` has code ``(cos, sin)(v * 90°)`` in its plane;
- a "query" direction ``Q[:, 4]`` says which attribute the prompt asks about (+1: A, -1: B) —
  the role a RAVEL template plays;
- every entity token also carries noise in ``Q[:, 5:]``;
- the (untied) unembedding row of the label token of A = v is ``SCALE * (U_A code_v + q)``, of
  B = v ``SCALE * (U_B code_v - q)``; every other row is zero, and SCALE is small enough that
  the cross-entropy never saturates (it keeps pulling the learned span onto U_A).

So an entity token predicts the value of the queried attribute, and swapping exactly span(U_A)
between a source and a base entity moves A's value and nothing else: DAS must find U_A.
"""

import functools
import itertools
from dataclasses import dataclass

import torch
from synthetic_batches import Row, make_batch

from hyperdas_tl.data.batching import InterventionBatch
from hyperdas_tl.models import (
    boot_bridge,
    build_tiny_llama_hf,
    smollm2_tokenizer,
    tiny_llama_config,
)

VOCAB = 4096
ENTITY_BASE = 1000
LABEL_A = 2000
LABEL_B = 2100
FILLER = 3000
SCALE = 2.0
N_VALUES = 4
COPIES = 3  # entity tokens per (a, b, query) combination, differing by their noise


@dataclass
class PlantedTask:
    model: object
    frame: torch.Tensor
    """Orthonormal frame Q of the residual stream (d_model x d_model)."""
    entities: list[tuple[int, int, int, int]]
    """(token id, A value, B value, query sign) of every entity token."""

    @property
    def u_a(self) -> torch.Tensor:
        return self.frame[:, 0:2]

    @property
    def u_b(self) -> torch.Tensor:
        return self.frame[:, 2:4]


def code(value: int) -> torch.Tensor:
    angle = torch.tensor(value * torch.pi / 2)
    return torch.stack([torch.cos(angle), torch.sin(angle)])


def build_planted_task(d_model: int = 32, noise: float = 0.5, seed: int = 0) -> PlantedTask:
    config = tiny_llama_config(d_model=d_model, n_layers=2, n_heads=4, n_key_value_heads=2)
    hf = build_tiny_llama_hf(config, VOCAB)
    g = torch.Generator().manual_seed(seed)
    frame = torch.linalg.qr(torch.randn(d_model, d_model, generator=g)).Q
    u_a, u_b, query, rest = frame[:, 0:2], frame[:, 2:4], frame[:, 4], frame[:, 5:]
    embedding = torch.zeros(VOCAB, d_model)
    entities = []
    token = ENTITY_BASE
    for a, b, q in itertools.product(range(N_VALUES), range(N_VALUES), (1, -1)):
        for _ in range(COPIES):
            noise_vec = rest @ (noise * torch.randn(rest.shape[1], generator=g))
            embedding[token] = 3 * (u_a @ code(a) + u_b @ code(b) + q * query) + noise_vec
            entities.append((token, a, b, q))
            token += 1
    embedding[FILLER] = 0.1 * frame[:, -1]
    unembedding = torch.zeros(VOCAB, d_model)  # only label tokens are ever predicted
    for v in range(N_VALUES):
        unembedding[LABEL_A + v] = SCALE * (u_a @ code(v) + query)
        unembedding[LABEL_B + v] = SCALE * (u_b @ code(v) - query)
    with torch.no_grad():
        hf.model.embed_tokens.weight = torch.nn.Parameter(embedding)
        hf.lm_head.weight = torch.nn.Parameter(unembedding)  # untied
        for layer in hf.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
    model = boot_bridge("tiny-llama", hf, smollm2_tokenizer(), device="cpu")
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return PlantedTask(model=model, frame=frame, entities=entities)


def planted_rows(
    task: PlantedTask,
    n: int,
    kinds: tuple[str, ...],
    seed: int,
    split: str = "train",
    attribute: str = "A",
) -> list[Row]:
    """``n`` examples intervening on ``attribute`` (A, or B with the roles swapped): cause rows
    (base asks A, label = source's A) and isolate rows (base asks B, label = base's B), sources
    drawn at random."""
    if attribute not in ("A", "B"):
        raise ValueError(f"the planted task has attributes A and B, not {attribute!r}")
    other = "B" if attribute == "A" else "A"
    g = torch.Generator().manual_seed(seed)
    asks = {
        "A": [e for e in task.entities if e[3] == 1],
        "B": [e for e in task.entities if e[3] == -1],
    }
    offsets = {"A": (LABEL_A, 1), "B": (LABEL_B, 2)}  # (first label token, index in the entity)
    rows = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        queried = attribute if kind == "cause" else other
        pool = asks[queried]
        base = pool[int(torch.randint(len(pool), (1,), generator=g))]
        source = task.entities[int(torch.randint(len(task.entities), (1,), generator=g))]
        queried_label, queried_value = offsets[queried]
        label = queried_label + (source if kind == "cause" else base)[queried_value]
        decode = task.model.tokenizer.decode
        rows.append(
            Row(
                base_prompt=[FILLER, base[0]],
                base_entity_last=1,
                source_prompt=[FILLER, FILLER, source[0]],
                source_entity_last=2,
                label_tokens=[label],
                kind=kind,
                attribute=attribute,
                queried=queried,
                label_text=decode([label]),
                base_label=decode([queried_label + base[queried_value]]),
                counterfactual_label=decode([queried_label + source[queried_value]]),
                split=split,
            )
        )
    return rows


def mixed_rows(task: PlantedTask, n: int, seed: int, split: str) -> list[Row]:
    """``n`` rows of each attribute (cause and isolate), interleaved as RAVEL batches mix them."""
    a = planted_rows(task, n, ("cause", "isolate"), seed=seed, split=split, attribute="A")
    b = planted_rows(task, n, ("cause", "isolate"), seed=seed + 100, split=split, attribute="B")
    return [row for pair in zip(a, b, strict=True) for row in pair]


def batches_of(rows: list[Row], size: int) -> list[InterventionBatch]:
    return [make_batch(rows[i : i + size]) for i in range(0, len(rows), size)]


def principal_cosines(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Cosines of the principal angles between two orthonormal bases (descending)."""
    return torch.linalg.svdvals(first.T.double() @ second.double())


@functools.cache
def shared_planted_task() -> PlantedTask:
    """One planted task per test session (building it takes a second)."""
    return build_planted_task()
