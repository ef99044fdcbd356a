"""How an instance's prompts are decoded, and why the KV-cached decoders are trusted.

:func:`model_generate_fn` runs the model over the prompts in sorted batches with one of
three backends (:data:`GenerationBackend`): ``"greedy_generate"``
(:func:`~hyperdas_tl.generation.greedy_generate`, no cache); ``"kv_cached"``
(:func:`~hyperdas_tl.generation.kv_cached_greedy_generate`, our own greedy loop over the plain
HF modules under the bridge; HF's ``generate`` on the bridge-wrapped model corrupts every token
after the first under transformers 5.24, and is 7x slower than this loop in bf16 on CPU);
``"prefix_cached"`` (the same loop, with the leading tokens a batch's prompts share, i.e. a
template's text before its entity, run once per batch instead of once per prompt; prompts are
batched in the order of their token ids rather than their lengths, so that a batch holds one
template's prompts (:func:`decoding_order`): for 600 real RAVEL entities with every template,
this computes 0.40x (city) and 0.29x (physical_object) the prompt tokens of length-sorted
batches, ``analyses/instance_decoding_profile.py``).

Decoding is never trusted blindly. With a KV-cached backend the first batch is decoded a second
time by the uncached :func:`~hyperdas_tl.generation.greedy_generate` and any difference that is
not a rounding tie (:func:`near_tie_rows`) stops the build with :class:`DecodingMismatchError`
(:func:`check_cached_decoding`).

With a ``parts_dir`` the batches are decoded in chunks of :data:`CHUNK_BATCHES` batches, each
written to ``parts_dir`` as soon as it is done and claimed through :mod:`hyperdas_tl.claims`:
a build that stops keeps its finished chunks, and several processes building the same
instance (same cache key, so the same folder) share the chunks out. The batches, and so the
outputs, are those of an unchunked build (tested).
"""

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from jaxtyping import Int
from torch import Tensor
from tqdm.auto import tqdm

from hyperdas_tl.atomic_write import write_text_atomically
from hyperdas_tl.choices import GENERATION_BACKENDS, GenerationBackend
from hyperdas_tl.claims import share_out
from hyperdas_tl.generation import greedy_generate, kv_cached_greedy_generate, shared_prefix_length
from hyperdas_tl.models import module_device
from hyperdas_tl.precision import autocast_like, model_dtype

logger = logging.getLogger(__name__)

DECODER_VERSION = 2
"""Version of the decoding implementation, part of the instance cache key. 2: the KV-cached
backend is checked against uncached greedy decoding and degenerate labels are refused;
instances cached by version 1 (labels possibly corrupted by transformers 5.24's cache) are
rebuilt."""
GenerateFn = Callable[[list[str], int], list[str]]
"""``(prompts, max_new_tokens) -> raw generated continuations`` (one string per prompt)."""
CHUNK_BATCHES = 16
"""Generation batches per chunk of a ``parts_dir`` (:func:`model_generate_fn`)."""


class DecodingMismatchError(ValueError):
    """KV-cached decoding disagreed with uncached greedy decoding on the check batch."""


def _decode_rows(tokenizer, rows: list[list[int]]) -> list[str]:
    eos = tokenizer.eos_token_id
    texts = []
    for row in rows:
        if eos is not None and eos in row:
            row = row[: row.index(eos)]
        texts.append(tokenizer.decode(row))
    return texts


TIE_TOLERANCE = {torch.float32: 1e-3, torch.bfloat16: 0.5}
"""Largest logit gap (uncached argmax minus the cached path's token, at the first step where
they differ) still read as a rounding tie between the two paths, by the target's dtype. A
broken cache misses by whole logits (transformers 5.24: every token after the first is "-")."""


def near_tie_rows(
    model: torch.nn.Module,
    input_ids: Int[Tensor, "batch pos"],
    attention_mask: Int[Tensor, "batch pos"],
    cached: Int[Tensor, "batch new"],
    uncached: Int[Tensor, "batch new"],
) -> list[int]:
    """Rows whose cached decoding departs from the uncached one where the uncached logits are a
    near tie (gap <= :data:`TIE_TOLERANCE`) between the two tokens, i.e. float rounding."""
    differ = (cached != uncached).any(dim=1)
    if not bool(differ.any()):
        return []
    lengths = attention_mask.long().sum(dim=1)
    width = input_ids.shape[1] + uncached.shape[1]
    ids = torch.zeros(input_ids.shape[0], width, dtype=input_ids.dtype, device=input_ids.device)
    ids[:, : input_ids.shape[1]] = input_ids * attention_mask
    mask = torch.zeros_like(ids)
    rows = torch.arange(ids.shape[0], device=ids.device)
    for step in range(uncached.shape[1]):
        ids[rows, lengths + step] = uncached[:, step]
        mask[rows, lengths + step] = 1
    mask[:, : input_ids.shape[1]] = attention_mask
    with torch.no_grad(), autocast_like(model):
        logits = model(ids, attention_mask=mask).float()
    tolerance = TIE_TOLERANCE.get(model_dtype(model), 1e-3)
    ties = []
    for row in torch.nonzero(differ).flatten().tolist():
        step = int((cached[row] != uncached[row]).nonzero()[0])
        position = int(lengths[row]) + step - 1
        scores = logits[row, position]
        gap = float(scores[uncached[row, step]] - scores[cached[row, step]])
        if gap <= tolerance:
            ties.append(row)
    return ties


def check_cached_decoding(
    cached: Int[Tensor, "batch new"],
    uncached: Int[Tensor, "batch new"],
    prompts: list[str],
    tokenizer,
    ties: Sequence[int] = (),
) -> None:
    """Raise :class:`DecodingMismatchError` unless the two decodings agree token for token on
    every row outside ``ties`` (rows where they part at a rounding tie, :func:`near_tie_rows`)."""
    import transformers

    cached_texts = _decode_rows(tokenizer, cached.tolist())
    uncached_texts = _decode_rows(tokenizer, uncached.tolist())
    if cached.shape != uncached.shape:
        differing = list(range(len(prompts)))
    else:
        differing = [
            i
            for i in range(len(prompts))
            if not torch.equal(cached[i].cpu(), uncached[i].cpu()) and i not in set(ties)
        ]
    if not differing:
        if ties:
            logger.info("cached decoding parts from uncached at %d rounding ties", len(ties))
        return
    first = differing[0]
    raise DecodingMismatchError(
        f"KV-cached decoding (generation='kv_cached', transformers {transformers.__version__}) "
        f"disagrees with uncached greedy decoding on {len(differing)} of {len(prompts)} prompts "
        f"of the first batch, e.g. {prompts[first]!r} -> {cached_texts[first]!r} (cached) vs "
        f"{uncached_texts[first]!r} (uncached), not at a rounding tie. Labels would be "
        "corrupted; nothing was built. Install the tested versions (pip install -c "
        "constraints.txt ...) or build with generation='greedy_generate'."
    )


def decoding_order(rows: Sequence[Sequence[int]], backend: GenerationBackend) -> list[int]:
    """The order in which :func:`model_generate_fn` batches prompts (their token ``rows``): by
    token ids for ``"prefix_cached"``, so that a template's prompts come together and share a
    prefix, else by length (stable), so that little padding is computed."""
    if backend == "prefix_cached":
        return sorted(range(len(rows)), key=lambda i: list(rows[i]))
    return sorted(range(len(rows)), key=lambda i: len(rows[i]))


def model_generate_fn(
    model: torch.nn.Module,
    batch_size: int,
    backend: GenerationBackend = "greedy_generate",
    *,
    parts_dir: Path | None = None,
) -> GenerateFn:
    """A :data:`GenerateFn` running ``model`` in sorted batches (:func:`decoding_order`) with a
    progress bar (``backend``: see :attr:`~hyperdas_tl.data.instance.InstanceConfig.generation`).
    With a KV-cached backend, the first batch it decodes is decoded again without a cache and
    compared (:func:`check_cached_decoding`). With ``parts_dir``, chunks of
    :data:`CHUNK_BATCHES` batches are stored there as they finish and shared with other
    processes (module docs)."""
    tokenizer = model.tokenizer
    device = module_device(model)
    if backend not in GENERATION_BACKENDS:
        raise ValueError(f"backend must be one of {GENERATION_BACKENDS}, got {backend!r}")
    verified = backend == "greedy_generate"

    def encode(texts: list[str]) -> tuple[Tensor, Tensor]:
        batch = tokenizer(texts, return_tensors="pt", padding=True)
        return batch["input_ids"].to(device), batch["attention_mask"].to(device)

    def decode(texts: list[str], max_new_tokens: int, how: GenerationBackend) -> Tensor:
        ids, mask = encode(texts)
        if how == "greedy_generate":
            return greedy_generate(model, ids, mask, max_new_tokens)
        shared = shared_prefix_length(ids, mask) if how == "prefix_cached" else 0
        return kv_cached_greedy_generate(model, ids, mask, max_new_tokens, shared_prefix=shared)

    def verify(texts: list[str], max_new_tokens: int, new: Tensor) -> None:
        reference = decode(texts, max_new_tokens, "greedy_generate")
        ties = near_tie_rows(model, *encode(texts), new, reference)
        check_cached_decoding(new, reference, texts, tokenizer, ties)

    def decode_batches(batches: list[list[str]], max_new_tokens: int) -> list[str]:
        nonlocal verified
        out: list[str] = []
        for texts in tqdm(batches, desc="generating", unit="batch", leave=False):
            new = decode(texts, max_new_tokens, backend)
            if not verified:
                verify(texts, max_new_tokens, new)
                verified = True
            out.extend(_decode_rows(tokenizer, new.tolist()))
        return out

    def generate(prompts: list[str], max_new_tokens: int) -> list[str]:
        order = decoding_order(tokenizer(prompts)["input_ids"], backend)
        batches = [
            [prompts[i] for i in order[start : start + batch_size]]
            for start in range(0, len(order), batch_size)
        ]
        if parts_dir is None:
            decoded = decode_batches(batches, max_new_tokens)
        else:
            chunks = [batches[i : i + CHUNK_BATCHES] for i in range(0, len(batches), CHUNK_BATCHES)]
            decoded = [
                text
                for chunk in shared_chunks(parts_dir, chunks, max_new_tokens, decode_batches)
                for text in chunk
            ]
        results: list[str] = [""] * len(prompts)
        for i, text in zip(order, decoded, strict=True):
            results[i] = text
        return results

    return generate


def shared_chunks(
    parts_dir: Path,
    chunks: list[list[list[str]]],
    max_new_tokens: int,
    decode_batches: Callable[[list[list[str]], int], list[str]],
) -> list[list[str]]:
    """The outputs of each chunk (a list of prompt batches): read from ``parts_dir`` when a
    finished copy is there, else decoded and stored, claimed chunk by chunk so that other
    processes decoding the same prompts into ``parts_dir`` share the work."""
    parts_dir = Path(parts_dir)

    def name(index: int) -> str:
        return f"new{max_new_tokens}-chunk{index:05d}"

    def finished(index: int) -> list[str] | None:
        path = parts_dir / f"{name(index)}.json"
        if not path.is_file():
            return None
        stored = json.loads(path.read_text(encoding="utf-8"))
        if stored["prompts"] != [p for batch in chunks[index] for p in batch]:
            raise ValueError(
                f"{path} holds the outputs of other prompts; {parts_dir} is not this build's "
                "parts folder (delete it to rebuild)"
            )
        return list(stored["outputs"])

    def run(index: int) -> list[str]:
        outputs = decode_batches(chunks[index], max_new_tokens)
        prompts = [p for batch in chunks[index] for p in batch]
        parts_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomically(
            parts_dir / f"{name(index)}.json", json.dumps({"prompts": prompts, "outputs": outputs})
        )
        return outputs

    done = sum((parts_dir / f"{name(i)}.json").is_file() for i in range(len(chunks)))
    if done:
        logger.info("%s: %d of %d chunks already decoded", parts_dir, done, len(chunks))
    return share_out(parts_dir, list(range(len(chunks))), name, finished, run)
