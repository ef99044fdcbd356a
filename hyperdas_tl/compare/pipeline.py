"""The comparison itself: :func:`compare_methods` checks its inputs, chooses the layer, runs
every (method, seed) unit (resuming finished ones from ``out_dir``) and builds the report."""

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hyperdas_tl.claims import claim, share_out
from hyperdas_tl.compare.data_checks import check_attribute_rows, split_batches, target_attributes
from hyperdas_tl.compare.layer_choice import LayerChoice, LayerScore, choose_layer
from hyperdas_tl.compare.methods import (
    DEFAULT_METHODS,
    LONGEST_FIRST,
    METHODS,
    SEEDED_METHODS,
)
from hyperdas_tl.compare.records import ExampleRecord, read_records, records_bytes
from hyperdas_tl.compare.report import ComparisonReport, build_report, write_report
from hyperdas_tl.compare.run_folder import (
    LAYER_JSON,
    check_run_folder,
    json_text,
    run_fingerprint,
    unit_curves_path,
    unit_name,
    unit_records_path,
    write_binary_file,
    write_file,
)
from hyperdas_tl.compare.settings import CompareSettings
from hyperdas_tl.compare.units import UnitContext, run_unit, score_unit
from hyperdas_tl.experiment import ExperimentData
from hyperdas_tl.hooks import resid_pre_name
from hyperdas_tl.hyperdas.model import HyperDAS
from hyperdas_tl.models import module_device
from hyperdas_tl.target import TargetModel

logger = logging.getLogger(__name__)

SPLIT_ORDER = ("train", "val_entity", "val_context", "test_entity", "test_context")


def _order(names: Iterable[str], order: Sequence[str]) -> list[str]:
    rank = {name: i for i, name in enumerate(order)}
    return sorted(set(names), key=lambda n: (rank.get(n, len(rank)), n))


def _check_trained_hyperdas(
    trained: Mapping[int, HyperDAS],
    model: TargetModel,
    layer: int | Sequence[int],
    k: int,
    methods: Sequence[str],
    seeds: Sequence[int],
) -> None:
    if not trained:
        return
    if "HyperDAS" not in methods:
        raise ValueError("trained_hyperdas given but 'HyperDAS' is not among the methods")
    if not isinstance(layer, int):
        raise ValueError("trained_hyperdas needs a given layer, not candidates to choose from")
    for seed, hyperdas in trained.items():
        if seed not in seeds:
            raise ValueError(f"trained_hyperdas has seed {seed}, not among the seeds {seeds}")
        if hyperdas.target is not model:
            raise ValueError(f"trained_hyperdas[{seed}] sits on another target model")
        if (hyperdas.layer, hyperdas.k) != (layer, k):
            raise ValueError(
                f"trained_hyperdas[{seed}] has layer {hyperdas.layer}, k {hyperdas.k}; "
                f"the comparison runs at layer {layer}, k {k}"
            )


def _layer_choice(
    model: TargetModel,
    data: ExperimentData,
    layers: Sequence[int],
    k: int,
    settings: CompareSettings,
    seed: int,
    out: Path | None,
    metadata: dict[str, Any],
) -> LayerChoice:
    """The layer choice stored in ``out``, or made now (and stored)."""
    cached = out / LAYER_JSON if out is not None else None
    if cached is not None and cached.exists():
        choice = LayerChoice.from_dict(json.loads(cached.read_text(encoding="utf-8")))
        logger.info("layer choice resumed from %s: layer %d", cached, choice.layer)
        return choice
    start = time.perf_counter()
    shared = None
    if out is not None:

        def shared(candidates: list[int], score: Callable[[int], LayerScore]) -> list[LayerScore]:
            def stored(layer: int) -> LayerScore | None:
                path = out / "layer_scores" / f"L{layer}.json"
                if not path.exists():
                    return None
                return LayerScore(**json.loads(path.read_text(encoding="utf-8")))

            def scored(layer: int) -> LayerScore:
                result = score(layer)
                write_file(out / "layer_scores" / f"L{layer}.json", json_text(asdict(result)))
                return result

            return share_out(out, candidates, lambda layer: f"layer_{layer}", stored, scored)

    choice = choose_layer(model, data, layers, k, settings=settings, seed=seed, map_layers=shared)
    metadata.setdefault("seconds", {})["layer_choice"] = time.perf_counter() - start
    if cached is not None:
        write_file(cached, json_text(choice.to_dict()))
    return choice


@dataclass
class _UnitOutput:
    records: list[ExampleRecord]
    curves: dict[str, Any] | None
    seconds: float | None
    """Seconds it took here (None: resumed)."""


def _label(method: str, seed: int | None) -> str:
    return f"{method} seed {seed}" if seed is not None else method


def _run_unit(
    ctx: UnitContext,
    out: Path | None,
    method: str,
    seed: int | None,
    on_unit: Callable[[str, int | None, float], None] | None,
) -> _UnitOutput:
    """Train and score one unit; with ``out``, write its curves and then its records (the
    records file marks it finished)."""
    start = time.perf_counter()
    result = run_unit(ctx, method, seed)
    unit_records = score_unit(ctx, result, seed)
    elapsed = time.perf_counter() - start
    unit_curves = {**result.curves, "seconds": elapsed}
    del result
    if out is not None:
        name = unit_name(method, seed)
        write_file(unit_curves_path(out, name), json_text(unit_curves))
        write_binary_file(unit_records_path(out, name), records_bytes(unit_records))  # last
    logger.info("%s: trained and scored in %.1fs", _label(method, seed), elapsed)
    if on_unit is not None:
        on_unit(method, seed, elapsed)
    return _UnitOutput(unit_records, unit_curves, elapsed)


def _finished_unit(
    out: Path, method: str, seed: int | None, resumed: list[str]
) -> _UnitOutput | None:
    """A unit's records and curves from ``out`` (finished here earlier, or by another
    process), or None when it is not finished."""
    name = unit_name(method, seed)
    record_path = unit_records_path(out, name)
    if not record_path.exists():
        return None
    curve_path = unit_curves_path(out, name)
    curves = json.loads(curve_path.read_text(encoding="utf-8")) if curve_path.exists() else None
    resumed.append(_label(method, seed))
    logger.info("%s: records found in %s, skipped", _label(method, seed), record_path)
    return _UnitOutput(read_records(record_path), curves, None)


def compare_methods(
    model: TargetModel,
    data: ExperimentData,
    layer: int | Sequence[int],
    k: int,
    methods: Sequence[str] = DEFAULT_METHODS,
    seeds: Sequence[int] = (0, 1, 2),
    *,
    settings: CompareSettings | None = None,
    out_dir: str | Path | None = None,
    metadata: dict[str, Any] | None = None,
    on_unit: Callable[[str, int | None, float], None] | None = None,
    trained_hyperdas: Mapping[int, HyperDAS] | None = None,
    longest_first: bool = False,
) -> ComparisonReport:
    """Train and score ``methods`` on the same examples of ``data`` (see the package docstring,
    :mod:`hyperdas_tl.compare`).

    Args:
        model: the frozen TransformerLens target.
        data: batches and examples per split (``train``, ``settings.val_split`` and the
            evaluation splits).
        layer: the intervention layer, or candidate layers to choose from on
            ``settings.val_split`` (:func:`choose_layer`).
        k: subspace dimension of DAS, MDAS, the random control and HyperDAS (probes use at
            most ``k`` and at most their rank).
        methods: names from :data:`METHODS`.
        seeds: seeds of every trained method (deterministic methods run once).
        settings: training, scoring and interval settings.
        out_dir: folder for incremental, resumable outputs (records, curves, summaries).
        metadata: JSON-serialisable notes stored with the run (e.g. the command line).
        on_unit: called as ``on_unit(method, seed, seconds)`` after each (method, seed) that
            ran (not after resumed ones).
        trained_hyperdas: HyperDAS models already trained (e.g. loaded from a checkpoint), by
            seed: ``"HyperDAS"`` scores them for those seeds instead of training. Each must
            sit on ``model`` at the comparison's layer and ``k`` (a given ``layer``, not a
            choice among candidates).
        longest_first: with ``out_dir``, take the units on in :data:`LONGEST_FIRST` order (the
            longest first) rather than as listed: for several processes sharing ``out_dir``,
            which then finish close together. The report is the same either way.
    """
    settings = settings or CompareSettings()
    methods = list(dict.fromkeys(methods))
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown methods {unknown}; choose from {METHODS}")
    seeds = list(dict.fromkeys(int(s) for s in seeds))
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    resid_d = int(model.cfg.d_model)
    if not 1 <= k <= resid_d:
        raise ValueError(f"k must be in [1, d_model={resid_d}], got {k}")
    split_batches(data, "train")
    split_batches(data, settings.val_split)
    splits = settings.eval_splits or tuple(s for s in data.batches if s != "train")
    splits = tuple(_order(splits, SPLIT_ORDER))
    for split in splits:
        split_batches(data, split)
    attributes = target_attributes(data)
    check_attribute_rows(data, methods, settings.val_split)
    if any("DAS" in m and m != "HyperDAS" for m in methods) and len(settings.das_lrs) < 3:
        logger.warning(
            "DAS / MDAS choose among %d learning rate(s); RAVEL's protocol wants at least 3",
            len(settings.das_lrs),
        )
    domains = {e.domain for examples in data.examples.values() for e in examples}
    if len(domains) != 1:
        raise ValueError(f"one domain per comparison, got {sorted(domains)}")
    domain = domains.pop()
    trained_hyperdas = dict(trained_hyperdas or {})
    _check_trained_hyperdas(trained_hyperdas, model, layer, k, methods, seeds)

    metadata = dict(metadata or {})
    out = Path(out_dir) if out_dir is not None else None
    layer_arg: Any = layer if isinstance(layer, int) else [int(x) for x in layer]
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        with claim(out, "run", wait=True):
            check_run_folder(out, run_fingerprint(model, data, layer_arg, k, settings), metadata)

    layer_choice = None
    if isinstance(layer, int):
        resid_pre_name(model, layer)
        chosen = layer
    else:
        layer_choice = _layer_choice(model, data, layer, k, settings, seeds[0], out, metadata)
        chosen = layer_choice.layer

    device = module_device(model)
    ctx = UnitContext(
        model=model,
        data=data,
        batches={s: [b.to(device) for b in bs] for s, bs in data.batches.items()},
        layer=chosen,
        k=k,
        attributes=attributes,
        splits=splits,
        settings=settings,
        trained_hyperdas=trained_hyperdas,
        out=out,
    )
    units = [(m, s) for m in methods for s in (seeds if m in SEEDED_METHODS else [None])]
    resumed: list[str] = []
    if out is None:
        outputs = [_run_unit(ctx, None, method, seed, on_unit) for method, seed in units]
        units_run = units
    else:
        claimed = sorted(units, key=lambda u: LONGEST_FIRST.index(u[0])) if longest_first else units
        outputs = share_out(
            out,
            claimed,
            lambda unit: unit_name(*unit),
            lambda unit: _finished_unit(out, *unit, resumed),
            lambda unit: _run_unit(ctx, out, *unit, on_unit),
        )
        units_run = claimed
    finished = dict(zip(units_run, outputs, strict=True))
    records = [r for unit in units for r in finished[unit].records]
    curves = {_label(*unit): finished[unit].curves for unit in units if finished[unit].curves}
    seconds = metadata.setdefault("seconds", {})
    seconds.update({_label(*u): finished[u].seconds for u in units if finished[u].seconds})
    metadata["resumed"] = resumed

    report = build_report(
        records,
        domain=domain,
        layer=chosen,
        k=k,
        methods=methods,
        seeds=seeds,
        splits=splits,
        settings=settings,
        layer_choice=layer_choice,
        curves=curves,
        metadata=metadata,
    )
    if out is not None:
        with claim(out, "report", wait=True):
            write_report(report, out)
    return report
