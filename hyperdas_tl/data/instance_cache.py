"""The on-disk instance cache: a built instance is keyed by model name + its weights' dtype +
the domain's data checksum + the config + the instance format and
:data:`~hyperdas_tl.data.instance_decoding.DECODER_VERSION`, and reused
(:func:`load_or_build_instance`)."""

import hashlib
import json
import logging
from pathlib import Path

import torch

from hyperdas_tl.cache import cache_dir
from hyperdas_tl.data.instance import (
    INSTANCE_FORMAT_VERSION,
    InstanceConfig,
    RavelInstance,
    build_instance,
)
from hyperdas_tl.data.instance_decoding import DECODER_VERSION, GenerateFn
from hyperdas_tl.data.ravel import RavelDomain
from hyperdas_tl.precision import model_dtype, precision_name

logger = logging.getLogger(__name__)


def instance_cache_key(
    model_name: str, domain: RavelDomain, config: InstanceConfig, dtype: str = "float32"
) -> str:
    """sha256 of model name + its weights' dtype + data checksum + config (+ the instance
    format and decoder versions)."""
    payload = {
        "model": model_name,
        "dtype": dtype,
        "data": domain.checksum,
        "config": config.to_dict(),
        "format": INSTANCE_FORMAT_VERSION,
        "decoder": DECODER_VERSION,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def instance_cache_path(
    model_name: str, domain: RavelDomain, config: InstanceConfig, dtype: str = "float32"
) -> Path:
    safe_model = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in model_name)
    key = instance_cache_key(model_name, domain, config, dtype)[:16]
    return cache_dir("instances") / f"{safe_model}-{domain.source}-{domain.name}-{key}.json"


def instance_parts_dir(path: Path) -> Path:
    """Where the outputs of the instance cached at ``path`` are kept while it is built."""
    return path.with_name(path.stem + ".parts")


def load_or_build_instance(
    model: torch.nn.Module | None,
    domain: RavelDomain,
    config: InstanceConfig | None = None,
    *,
    model_name: str,
    generate: GenerateFn | None = None,
    use_cache: bool = True,
) -> RavelInstance:
    """:func:`build_instance`, reusing the on-disk copy keyed by model, data and config.

    While it is built, the model's outputs are kept chunk by chunk in ``<cache file>.parts/``:
    a build that stops resumes from its finished chunks, and processes building the same
    instance at once share the chunks (run the same command once per core, one thread each).
    """
    config = config or InstanceConfig()
    dtype = "float32" if model is None else precision_name(model_dtype(model))
    path = instance_cache_path(model_name, domain, config, dtype)
    if use_cache and path.is_file():
        logger.info("Reusing cached instance %s", path)
        return RavelInstance.load(path, domain)
    instance = build_instance(
        model,
        domain,
        config,
        model_name=model_name,
        generate=generate,
        parts_dir=instance_parts_dir(path) if use_cache else None,
    )
    if use_cache:
        instance.save(path)
    return instance
