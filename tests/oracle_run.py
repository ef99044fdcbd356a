"""A whole CLI-sized run on the tiny random model: a small RAVEL-format city folder and an
instance cache built with an oracle generator (the "model" answers every stored value), so
``train_and_evaluate`` and ``python -m hyperdas_tl train --model tiny-llama`` find training
pairs without a real model (the tiny model itself knows no facts).

``oracle_cache`` (a fixture factory) points ``$HYPERDAS_TL_CACHE`` at a fresh folder that reuses
the real cache's tokenizer/model conversions (symlinks), and makes
``hyperdas_tl.experiment.load_or_build_instance`` use the oracle. :func:`prime_instance` builds
and caches the instance in-process, so a CLI subprocess with the same ``$HYPERDAS_TL_CACHE``
reuses it.
"""

import json
from pathlib import Path

from hyperdas_tl import cache, experiment
from hyperdas_tl.data.ravel import RavelDomain

CITIES = {
    # entity: (Country, Continent, split)
    "Paris": ("France", "Europe", "train"),
    "Berlin": ("Germany", "Europe", "train"),
    "Tokyo": ("Japan", "Asia", "train"),
    "Nairobi": ("Kenya", "Africa", "train"),
    "Lima": ("Peru", "South America", "train"),
    "Toronto": ("Canada", "North America", "train"),
    "Oslo": ("Norway", "Europe", "train"),
    "Hanoi": ("Vietnam", "Asia", "train"),
    "Accra": ("Ghana", "Africa", "train"),
    "Quito": ("Ecuador", "South America", "train"),
    "Madrid": ("Spain", "Europe", "val"),
    "Cairo": ("Egypt", "Africa", "val"),
    "Sydney": ("Australia", "Oceania", "val"),
    "Seoul": ("South Korea", "Asia", "test"),
    "Lagos": ("Nigeria", "Africa", "test"),
    "Denver": ("United States", "North America", "test"),
    "Vienna": ("Austria", "Europe", "test"),
}
TEMPLATES = {
    "Country": {
        "%s is a city in the country of": "train",
        "The city of %s is located in the country of": "train",
        "People in %s live in the country of": "train",
        "Q: Which country is %s in? A:": "val",
        "Rome is in Italy. %s is in": "test",
        "Where is %s? It is in the country of": "test",
    },
    "Continent": {
        "%s is a city on the continent of": "train",
        "The city of %s lies on the continent of": "train",
        "People in %s live on the continent of": "train",
        "Q: Which continent is %s on? A:": "val",
        "Rome is in Europe. %s is in": "test",
        "Where is %s? It is on the continent of": "test",
    },
}
CONTEXTS = {
    "Last year I moved to %s because": {"split": "train", "entity": None},
    "We drove through %s on the way": {"split": "train", "entity": None},
    "The mayor of %s said that": {"split": "val", "entity": "Madrid"},
    "A museum in %s shows": {"split": "test", "entity": None},
}


def write_ravel(folder: Path) -> Path:
    """The dataset as ``folder/data/*.json`` (RAVEL's layout); returns ``folder``."""
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    files = {
        "ravel_city_entity_attributes.json": {
            e: {"Country": c, "Continent": k} for e, (c, k, _) in CITIES.items()
        },
        "ravel_city_attribute_to_prompts.json": {a: list(t) for a, t in TEMPLATES.items()},
        "ravel_city_prompt_to_split.json": {
            t: s for ts in TEMPLATES.values() for t, s in ts.items()
        },
        "ravel_city_entity_to_split.json": {e: s for e, (_, _, s) in CITIES.items()},
        "wikipedia_city_entity_prompts.json": CONTEXTS,
    }
    for name, content in files.items():
        (data / name).write_text(json.dumps(content), encoding="utf-8")
    return folder


def oracle_generator(domain: RavelDomain):
    """A ``GenerateFn`` answering ``" <stored value>,"`` for every template x entity."""
    answers = {}
    for attribute in domain.attributes:
        for template in domain.templates_for(attribute):
            for entity in domain.entities():
                if domain.has_value(entity, attribute):
                    answers[template.fill(entity)] = f" {domain.value(entity, attribute)},"

    def generate(prompts: list[str], max_new_tokens: int) -> list[str]:
        return [answers[p] for p in prompts]

    return generate


def use_oracle_cache(root: Path, monkeypatch) -> Path:
    """Point ``$HYPERDAS_TL_CACHE`` at ``root`` (model conversions linked from the real cache)
    and build instances with :func:`oracle_generator`."""
    real = cache.cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("models", "tokenizers"):
        if (real / sub).exists() and not (root / sub).exists():
            (root / sub).symlink_to(real / sub, target_is_directory=True)
    monkeypatch.setenv(cache.CACHE_ENV_VAR, str(root))
    original = experiment.load_or_build_instance

    def with_oracle(model, domain, config=None, *, model_name, **kwargs):
        kwargs["generate"] = oracle_generator(domain)  # the model only keys the cache (dtype)
        return original(model, domain, config, model_name=model_name, **kwargs)

    monkeypatch.setattr(experiment, "load_or_build_instance", with_oracle)
    return root


def prime_instance(profile, model_name: str = "tiny-llama") -> experiment.ExperimentData:
    """Build (and cache) the profile's data in-process, with the oracle in place, for a target
    of the dtype the CLI will load (the instance cache is keyed by it)."""
    from hyperdas_tl.models import load_model
    from hyperdas_tl.precision import resolve_precision

    dtype = resolve_precision(profile.precision, "cpu")
    target = load_model(model_name, device="cpu", dtype=dtype)
    return experiment.build_experiment_data(target, profile.data, model_name=model_name)


def fail_evaluation_on(split: str, monkeypatch):
    """Make :mod:`hyperdas_tl.hyperdas.run` fail while scoring ``split`` (a late failure, as a
    degenerate label used to cause); returns the real ``evaluate_interventions``."""
    import hyperdas_tl.hyperdas.run as run_module

    real_evaluate = run_module.evaluate_interventions

    def evaluate_interventions(*args, setting, **kwargs):
        if setting == split:
            raise ValueError("label ' --' is empty after normalisation")
        return real_evaluate(*args, setting=setting, **kwargs)

    monkeypatch.setattr(run_module, "evaluate_interventions", evaluate_interventions)
    return real_evaluate
