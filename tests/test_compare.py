import dataclasses
import gzip
import json
import shutil

import pytest
from bad_input import raises_bad_input
from filelock import FileLock
from tiny_experiment import tiny_experiment_data

from hyperdas_tl import compare
from hyperdas_tl.baselines.das import run_store
from hyperdas_tl.baselines.das import search as das_search
from hyperdas_tl.claims import lock_path
from hyperdas_tl.compare import (
    METHODS,
    CompareSettings,
    ExampleRecord,
    build_report,
    compare_methods,
    default_differences,
    paired_method_difference,
    read_records,
)
from hyperdas_tl.compare.figure import comparison_figure
from hyperdas_tl.compare.run_folder import unit_checkpoint_path, unit_name, unit_records_path
from hyperdas_tl.hyperdas import train as hyperdas_train
from hyperdas_tl.hyperdas.config import HyperDASConfig
from hyperdas_tl.hyperdas.intervention import hyperdas_intervention
from hyperdas_tl.hyperdas.model import HyperDAS
from hyperdas_tl.metrics import Judgement, evaluate, summarise
from hyperdas_tl.stats import BootstrapConfig

EVAL_SPLITS = ("val_entity", "test_entity")  # the data's splits but train (two keep it fast)
SETTINGS = CompareSettings(
    das_lrs=(0.01, 0.03, 0.1),
    das_max_epochs=2,
    das_patience=1,
    layer_epochs=1,
    probe_max_iter=20,
    hyperdas=HyperDASConfig.build(
        target_model="tiny-llama",
        n_hypernet_layers=2,
        n_selection_heads=4,
        n_steps=3,
        eval_every=2,
        val_batches=1,
    ),
    bootstrap=BootstrapConfig(n_resamples=200),
)
SEEDS = (0, 1)
RUN = tuple(m for m in METHODS if m != "DAS (pooled)")  # one pooled ablation is enough here
SCORED = (
    "no intervention", "random subspace", "full residual swap", "probe", "DAS", "MDAS",
    "MDAS (pooled)", "HyperDAS (soft)", "HyperDAS (one_to_many)", "HyperDAS (one_to_one)",
    "HyperDAS (entity position)",
)  # fmt: skip
INTERVAL = {"mean", "lo", "hi"}


@pytest.fixture(scope="module")
def data(tiny_model):
    return tiny_experiment_data(
        tiny_model.tokenizer, batch_size=16, splits=("train", "test_entity", "val_entity")
    )


class Interrupted(RuntimeError):
    pass


@pytest.fixture(scope="module")
def run(tiny_model, data, tmp_path_factory):
    """A run interrupted after its third (method, seed), then resumed to the end."""
    out = tmp_path_factory.mktemp("benchmark")
    finished = []

    def interrupt(method, seed, seconds):
        finished.append((method, seed))
        if len(finished) == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        compare_methods(tiny_model, data, [1, 2], 4, RUN, SEEDS, settings=SETTINGS,
                        out_dir=out, on_unit=interrupt, metadata={"command": "first"})  # fmt: skip
    kept = sorted(p.name for p in (out / "records").iterdir())
    ran = []
    report = compare_methods(tiny_model, data, [1, 2], 4, RUN, SEEDS, settings=SETTINGS,
                             out_dir=out, on_unit=lambda m, s, t: ran.append((m, s)),
                             metadata={"command": "second"})  # fmt: skip
    return out, report, finished, kept, ran


def test_an_interrupted_run_keeps_finished_units_and_resumes_the_rest(run):
    out, report, finished, kept, ran = run
    assert finished == [("no intervention", None), ("random subspace", 0), ("random subspace", 1)]
    assert kept == [
        "no_intervention.seednone.jsonl.gz",
        "random_subspace.seed0.jsonl.gz",
        "random_subspace.seed1.jsonl.gz",
    ]
    assert not set(finished) & set(ran)  # resumed, not re-run
    assert report.metadata["resumed"] == ["no intervention", "random subspace seed 0",
                                          "random subspace seed 1"]  # fmt: skip
    invocations = json.loads((out / "run.json").read_text())["invocations"]
    assert [i["command"] for i in invocations] == ["first", "second"]


def test_summary_json_has_the_issue_schema(run, data):
    out, report, *_ = run
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"city", "differences"}
    assert tuple(summary["city"]) == EVAL_SPLITS
    for split in EVAL_SPLITS:
        assert tuple(summary["city"][split]) == SCORED
        counts = data.counts()[split]
        for method, cell in summary["city"][split].items():
            assert set(cell) == {"cause", "isolate", "disentangle", "n_cause", "n_isolate", "seeds"}
            for metric in ("cause", "isolate", "disentangle"):
                assert set(cell[metric]) == INTERVAL
                assert cell[metric]["lo"] <= cell[metric]["hi"]
                assert 0.0 <= cell[metric]["mean"] <= 1.0
            assert cell["n_cause"] == counts["Country/cause"] + counts["Continent/cause"]
            assert cell["n_isolate"] == counts["Country/isolate"] + counts["Continent/isolate"]
            deterministic = method in ("no intervention", "full residual swap", "probe")
            assert cell["seeds"] == ([] if deterministic else [0, 1])
        names = set(summary["differences"][split])
        assert names == {
            "HyperDAS (soft) - MDAS", "HyperDAS (soft) - DAS", "HyperDAS (one_to_many) - MDAS",
            "HyperDAS (one_to_many) - DAS", "HyperDAS (one_to_one) - MDAS",
            "HyperDAS (one_to_one) - DAS", "HyperDAS (soft) - HyperDAS (one_to_one)",
            "DAS - no intervention", "MDAS - no intervention",
            "HyperDAS (soft) - no intervention", "HyperDAS (one_to_many) - no intervention",
            "HyperDAS (one_to_one) - no intervention",
            "HyperDAS (entity position) - MDAS", "HyperDAS (entity position) - DAS",
            "HyperDAS (entity position) - HyperDAS (soft)",
            "HyperDAS (entity position) - HyperDAS (one_to_many)",
            "HyperDAS (entity position) - HyperDAS (one_to_one)",
            "HyperDAS (entity position) - no intervention",
        }  # fmt: skip
        for difference in summary["differences"][split].values():
            assert set(difference) == INTERVAL and difference["lo"] <= difference["hi"]
    # the no-intervention control never produces a counterfactual label
    assert summary["city"]["test_entity"]["no intervention"]["cause"]["mean"] == 0.0


def test_records_are_complete_and_recompute_the_summary(run, data):
    out, report, *_ = run
    records = read_records(out / "records.jsonl.gz")
    assert records == report.records
    n_eval = sum(len(data.examples[s]) for s in EVAL_SPLITS)
    runs = {(r.method, r.seed) for r in records}
    assert len(records) == n_eval * len(runs)
    assert len(runs) == 3 + 2 * (len(SCORED) - 3)  # three deterministic, the rest twice
    ids = {r.example_id for r in records if r.method == "DAS" and r.seed == 0}
    assert ids == {r.example_id for r in records if r.method == "HyperDAS (soft)" and r.seed == 1}
    again = build_report(
        records,
        domain="city",
        layer=report.layer,
        k=4,
        methods=RUN,
        seeds=SEEDS,
        splits=EVAL_SPLITS,
        settings=SETTINGS,
    )
    assert again.summary() == report.summary()


def test_point_estimates_agree_with_metrics_summarise(run):
    _, report, *_ = run
    for score in report.scores:
        for seed in score.seeds or [None]:
            mine = [
                r
                for r in report.records
                if (r.method, r.seed, r.split) == (score.method, seed, score.split)
            ]
            judgements = [
                Judgement(r.domain, r.attribute, r.split, r.kind, r.mode, r.correct) for r in mine
            ]
            (domain,) = summarise(judgements)[1]
            scores = score.pooled if seed is None else score.per_seed[seed]
            for metric in ("cause", "isolate", "disentangle"):
                expected = getattr(domain, metric)
                assert scores.get(metric).mean == pytest.approx(expected), (score.method, metric)


def test_a_missing_kind_leaves_that_attribute_out_of_disentangle():
    settings = CompareSettings(bootstrap=BootstrapConfig(n_resamples=200))
    country = records_of("DAS", [1, 0, 1, 1, 0, 1, 1, 1], seed=0)
    continent = [
        dataclasses.replace(r, attribute="Continent", example_id=r.example_id + "c")
        for r in records_of("DAS", [0, 0, 1, 0], seed=0, kinds=["isolate"] * 4)
    ]
    report = build_report(country + continent, domain="city", layer=1, k=4, methods=["DAS"],
                          seeds=[0], splits=["test_entity"], settings=settings)  # fmt: skip
    judgements = [
        Judgement(r.domain, r.attribute, r.split, r.kind, r.mode, r.correct)
        for r in country + continent
    ]
    (domain,) = summarise(judgements)[1]
    pooled = report.score("DAS", "test_entity").pooled
    assert pooled.disentangle.mean == pytest.approx(domain.disentangle) == (0.75 + 0.75) / 2
    assert pooled.isolate.mean == pytest.approx(domain.isolate) == (0.75 + 0.25) / 2


def test_layer_is_chosen_on_validation_and_curves_are_saved(run):
    out, report, *_ = run
    choice = json.loads((out / "layer_choice.json").read_text())
    assert choice["split"] == "val_entity" and choice["layer"] in (1, 2)
    assert report.layer == choice["layer"] and [s["layer"] for s in choice["scores"]] == [1, 2]
    curves = json.loads((out / "curves" / "mdas.seed1.json").read_text())
    for attribute in ("Country", "Continent"):
        runs = curves["attributes"][attribute]["runs"]
        assert [r["config"]["lr"] for r in runs] == list(SETTINGS.das_lrs)
        assert all(r["history"]["curve"] for r in runs)
    hyperdas = json.loads((out / "curves" / "hyperdas.seed0.json").read_text())
    assert hyperdas["steps"] == 3 and len(hyperdas["history"]) == 3
    assert hyperdas["config"]["architecture"]["positions"] == "selected"
    ablation = json.loads((out / "curves" / "hyperdas_entity_position.seed0.json").read_text())
    assert ablation["config"]["architecture"]["positions"] == "entity"
    assert (out / "checkpoints" / "hyperdas_entity_position.seed0" / "config.json").exists()
    ablated = {r.method for r in report.records if r.method.startswith("HyperDAS (entity")}
    assert ablated == {"HyperDAS (entity position)"}  # one read-out: the positions are fixed
    details = json.loads((out / "details.json").read_text())
    das = next(s for s in details["scores"] if (s["method"], s["split"]) == ("DAS", "test_entity"))
    assert set(das["per_seed"]) == {"0", "1"} and set(das["over_seeds"]) == {
        "cause", "isolate", "disentangle"
    }  # fmt: skip
    assert set(das["attributes"]) == {"Country", "Continent"}
    markdown = (out / "summary.md").read_text()
    assert "## test_entity" in markdown and "| HyperDAS (soft) - MDAS |" in markdown
    assert "excludes 0" in markdown


SHARED = ("no intervention", "random subspace")


@pytest.fixture(scope="module")
def unshared(tiny_model, data, tmp_path_factory):
    """The controls run by one process alone: what a shared folder must end with."""
    out = tmp_path_factory.mktemp("unshared")
    report = compare_methods(tiny_model, data, 1, 4, SHARED, [0], settings=SETTINGS, out_dir=out)
    return out, report


def held_by_another_process(out, method, seed=None):
    """The lock another process holding ``(method, seed)`` would hold (flock locks conflict
    between two open files of one process too)."""
    path = lock_path(out, unit_name(method, seed))
    path.parent.mkdir(parents=True)
    lock = FileLock(str(path), timeout=0)
    lock.acquire()
    return lock


@pytest.mark.parametrize("other_finishes", [True, False], ids=["finishes", "dies"])
def test_a_unit_held_by_another_process_is_waited_for(
    tiny_model, data, unshared, tmp_path, other_finishes
):
    reference_out, reference = unshared
    out = tmp_path / "shared"
    other = held_by_another_process(out, "no intervention")
    ran = []

    def then_the_other_process_ends(method, seed, seconds):
        ran.append((method, seed))
        if other.is_locked:
            if other_finishes:  # its records appear, then its lock goes
                name = unit_name("no intervention", None)
                target = unit_records_path(out, name)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(unit_records_path(reference_out, name), target)
            other.release()

    report = compare_methods(tiny_model, data, 1, 4, SHARED, [0], settings=SETTINGS,
                             out_dir=out, on_unit=then_the_other_process_ends)  # fmt: skip
    if other_finishes:  # read, not run again
        assert ran == [("random subspace", 0)]
        assert report.metadata["resumed"] == ["no intervention"]
    else:  # its holder died without records: this process runs it
        assert ran == [("random subspace", 0), ("no intervention", None)]
    assert report.summary() == reference.summary()
    assert [r.method for r in report.records] == [r.method for r in reference.records]
    assert json.loads((out / "summary.json").read_text()) == json.loads(
        (reference_out / "summary.json").read_text()
    )


def test_a_different_run_in_the_same_folder_is_refused(tiny_model, data, run):
    out, *_ = run
    changed = CompareSettings(**{**SETTINGS.__dict__, "das_max_epochs": 5})
    with raises_bad_input("holds a different comparison"):
        compare_methods(tiny_model, data, [1, 2], 4, ["DAS"], SEEDS, settings=changed, out_dir=out)


def resume_without_training(tiny_model, data, folder, monkeypatch):
    """The run of ``folder`` resumed with training made impossible."""

    def no_training(*args, **kwargs):
        raise AssertionError("a finished (method, seed) was run again")

    monkeypatch.setattr("hyperdas_tl.compare.pipeline.run_unit", no_training)
    return compare_methods(tiny_model, data, [1, 2], 4, RUN, SEEDS, settings=SETTINGS,
                           out_dir=folder)  # fmt: skip


def test_finished_folder_resumes_without_training(tiny_model, data, run, monkeypatch):
    out, report, *_ = run
    again = resume_without_training(tiny_model, data, out, monkeypatch)
    assert again.summary() == report.summary()


def test_records_written_by_an_earlier_version_as_plain_jsonl_resume(
    tiny_model, data, run, tmp_path, monkeypatch
):
    out, report, *_ = run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    for packed in (copy / "records").glob("*.jsonl.gz"):
        packed.with_suffix("").write_bytes(gzip.decompress(packed.read_bytes()))
        packed.unlink()
    again = resume_without_training(tiny_model, data, copy, monkeypatch)
    assert again.summary() == report.summary()


def test_a_run_started_before_the_config_split_resumes(
    tiny_model, data, run, tmp_path, monkeypatch
):
    out, report, *_ = run
    copy = tmp_path / "flat"
    shutil.copytree(out, copy)
    saved = json.loads((copy / "run.json").read_text())
    nested = saved["fingerprint"]["training"]["hyperdas"]
    flat = {**nested["architecture"], **nested["training"], "data": nested["data"]}
    saved["fingerprint"]["training"]["hyperdas"] = flat  # the layout of runs before the split
    (copy / "run.json").write_text(json.dumps(saved))
    again = resume_without_training(tiny_model, data, copy, monkeypatch)
    assert again.summary() == report.summary()
    changed = dict(flat, n_hypernet_layers=flat["n_hypernet_layers"] + 1)
    saved["fingerprint"]["training"]["hyperdas"] = changed
    (copy / "run.json").write_text(json.dumps(saved))
    with raises_bad_input("holds a different comparison"):
        compare_methods(tiny_model, data, [1, 2], 4, RUN, SEEDS, settings=SETTINGS, out_dir=copy)


@pytest.mark.parametrize(("legacy_flag", "resumes"), [(True, False), (False, True)])
def test_a_run_recorded_with_the_legacy_bucket_flag_resumes_only_as_that_bucketing(
    tiny_model, data, run, tmp_path, monkeypatch, legacy_flag, resumes
):
    out, report, *_ = run
    copy = tmp_path / "legacy"
    shutil.copytree(out, copy)
    saved = json.loads((copy / "run.json").read_text())
    saved_data = saved["fingerprint"]["data"]
    assert saved_data.pop("bucketing") == "none"  # the tiny run's data
    saved_data["bucket_by_length"] = legacy_flag  # on: every split bucketed ("all")
    (copy / "run.json").write_text(json.dumps(saved))
    if resumes:
        again = resume_without_training(tiny_model, data, copy, monkeypatch)
        assert again.summary() == report.summary()
        rewritten = json.loads((copy / "run.json").read_text())["fingerprint"]["data"]
        assert rewritten["bucketing"] == "none" and "bucket_by_length" not in rewritten
    else:
        with raises_bad_input(r"holds a different comparison \(differs in \['data'\]\)"):
            compare_methods(
                tiny_model, data, [1, 2], 4, RUN, SEEDS, settings=SETTINGS, out_dir=copy
            )


def test_a_run_resumes_whatever_spelling_of_its_ravel_archive_it_is_given(
    tiny_model, data, run, tmp_path, monkeypatch
):
    out, report, *_ = run
    copy = tmp_path / "spelled"
    shutil.copytree(out, copy)
    archive = tmp_path / "ravel" / "data.tgz"
    (tmp_path / "checkout").mkdir()
    monkeypatch.chdir(tmp_path / "checkout")
    saved = json.loads((copy / "run.json").read_text())
    saved["fingerprint"]["data"]["ravel_path"] = str(archive)
    (copy / "run.json").write_text(json.dumps(saved))
    relative = dataclasses.replace(
        data, config=dataclasses.replace(data.config, ravel_path="../ravel/data.tgz")
    )
    again = resume_without_training(tiny_model, relative, copy, monkeypatch)
    assert again.summary() == report.summary()
    other = dataclasses.replace(
        data, config=dataclasses.replace(data.config, ravel_path="../other/data.tgz")
    )
    with raises_bad_input(r"holds a different comparison \(differs in \['data'\]\)"):
        compare_methods(tiny_model, other, [1, 2], 4, RUN, SEEDS, settings=SETTINGS, out_dir=copy)


def test_record_files_are_reproducible_gzip(run):
    out, report, *_ = run
    packed = (out / "records.jsonl.gz").read_bytes()
    assert packed == compare.records_bytes(report.records)  # no timestamp in the header
    assert read_records(out / "records.jsonl.gz") == report.records


# ------------------------------------------------------------------ summaries without a model


def records_of(method, verdicts, seed=None, kinds=None, entities=None):
    kinds = kinds or ["cause", "isolate"] * (len(verdicts) // 2)
    entities = entities or [f"e{i // 2}" for i in range(len(verdicts))]
    return [
        ExampleRecord(method, seed, "city", "test_entity", "Country", kind, "teacher_forced",
                      f"id{i}", entity, bool(v))
        for i, (v, kind, entity) in enumerate(zip(verdicts, kinds, entities, strict=True))
    ]  # fmt: skip


def test_paired_difference_carries_each_seed_and_the_seed_condition():
    config = BootstrapConfig(n_resamples=500)
    mdas = [r for seed in (0, 1, 2) for r in records_of("MDAS", [1, 0] * 20, seed=seed)]
    # HyperDAS seeds 0 and 1 are right on every row (above MDAS's Disentangle 0.5), seed 2 on
    # none (below it): pooled, every example averages 2/3, above MDAS with a zero-width interval
    hyperdas = [
        r
        for seed, verdict in ((0, 1), (1, 1), (2, 0))
        for r in records_of("HyperDAS (soft)", [verdict] * 40, seed=seed)
    ]
    diff = paired_method_difference(hyperdas, mdas, config)
    assert diff.disentangle.mean == pytest.approx(1 / 6) and diff.disentangle.lo > 0
    assert sorted(diff.per_seed) == [0, 1, 2]
    seed_2 = paired_method_difference(
        [r for r in hyperdas if r.seed == 2], [r for r in mdas if r.seed == 2], config
    )
    assert diff.per_seed[2] == seed_2.disentangle and seed_2.per_seed == {}  # one seed: none
    assert diff.per_seed[0].lo > 0 > diff.per_seed[2].hi
    assert diff.decision == "no consistent difference"
    assert diff.to_dict()["per_seed"]["2"]["hi"] < 0
    kept = paired_method_difference(hyperdas[:80], mdas[:80], config)  # seeds 0 and 1 only
    assert kept.decision == "HyperDAS (soft) > MDAS"
    # a deterministic method is paired with every seed of the other
    no_op = records_of("no intervention", [0, 1] * 20)
    assert sorted(paired_method_difference(hyperdas, no_op, config).per_seed) == [0, 1, 2]
    assert paired_method_difference(no_op, no_op, config).per_seed == {}


def test_report_of_hand_made_records():
    settings = CompareSettings(bootstrap=BootstrapConfig(n_resamples=500))
    verdicts = [1, 1, 0, 1, 1, 0, 1, 1, 0, 1] * 4
    records = (
        records_of("MDAS", verdicts, seed=0)
        + records_of("MDAS", [1 - v for v in verdicts], seed=1)
        + [
            r
            for mode in ("soft", "one_to_many", "one_to_one")
            for r in records_of(f"HyperDAS ({mode})", verdicts, seed=0)
        ]
    )
    report = build_report(records, domain="city", layer=1, k=4, methods=["MDAS", "HyperDAS"],
                          seeds=[0, 1], splits=["test_entity"], settings=settings)  # fmt: skip
    mdas = report.score("MDAS", "test_entity")
    # seed 1 is the complement of seed 0: every example averages to 0.5, a zero-width interval
    assert (mdas.pooled.cause.mean, mdas.pooled.cause.lo, mdas.pooled.cause.hi) == (0.5,) * 3
    assert mdas.over_seeds["disentangle"].sd > 0 and mdas.seeds == [0, 1]
    assert mdas.per_seed[0].cause.mean == pytest.approx(0.6)  # 12 of the 20 cause rows
    same = report.difference("HyperDAS (soft) - HyperDAS (one_to_one)", "test_entity")
    assert (same.disentangle.mean, same.disentangle.lo, same.disentangle.hi) == (0.0, 0.0, 0.0)
    assert same.decision == "no difference"
    assert [d.name for d in report.differences] == [
        f"{a} - {b}" for a, b in default_differences(report.methods)
    ]
    with raises_bad_input("different examples"):
        build_report(records + records_of("DAS", verdicts[:10], seed=0), domain="city", layer=1,
                     k=4, methods=["DAS", "HyperDAS"], seeds=[0], splits=["test_entity"],
                     settings=settings)  # fmt: skip


def test_settings_validation_and_round_trip():
    with raises_bad_input("val_split"):
        CompareSettings(val_split="train")
    with raises_bad_input("val_split"):
        CompareSettings(val_split="test_entity")  # nothing is ever chosen on a test split
    with raises_bad_input("das_lrs"):
        CompareSettings(das_lrs=())
    with raises_bad_input("das_lrs repeat a learning rate"):
        CompareSettings(das_lrs=(0.01, 1e-2))  # one stored run per rate
    with raises_bad_input("modes"):
        CompareSettings(modes=("argmax",))
    data = json.loads(json.dumps(SETTINGS.to_dict()))
    assert CompareSettings.from_dict(data) == SETTINGS


def test_unknown_methods_and_bad_k_are_refused(tiny_model, data):
    with raises_bad_input("unknown methods"):
        compare_methods(tiny_model, data, 1, 4, ["DAS", "SAE"], SEEDS)
    with raises_bad_input("k must be"):
        compare_methods(tiny_model, data, 1, 0, ["DAS"], SEEDS)


def test_an_attribute_without_cause_rows_is_refused_before_training(tiny_model, data):
    attribute = data.config.attributes[0]
    pruned = dataclasses.replace(
        data,
        examples={
            split: [
                e for e in examples if not (e.target_attribute == attribute and e.kind == "cause")
            ]
            for split, examples in data.examples.items()
        },
    )
    with raises_bad_input(f"{attribute} has no cause examples in 'train'"):
        compare_methods(tiny_model, pruned, 1, 4, ["no intervention", "DAS"], SEEDS)
    # HyperDAS alone has no per-attribute subspace to train: nothing to refuse there
    compare.check_attribute_rows(pruned, ["no intervention", "HyperDAS"], "val_entity")


def test_a_trained_hyperdas_is_scored_as_given_not_retrained(tiny_model, data, monkeypatch):
    config = SETTINGS.hyperdas.with_fields(layer=1, k=4, seed=0)
    given = HyperDAS(tiny_model, config)
    monkeypatch.setattr(compare.units, "train_hyperdas", None)  # training would fail loudly
    report = compare_methods(tiny_model, data, 1, 4, ["no intervention", "HyperDAS"], [0],
                             settings=SETTINGS, trained_hyperdas={0: given})  # fmt: skip
    assert report.curves["HyperDAS seed 0"]["given"] is True
    soft = hyperdas_intervention(given, "soft")
    direct = evaluate(tiny_model, data.batches["test_entity"], soft, method="given",
                      setting="test_entity", config=SETTINGS.eval_config)  # fmt: skip
    mine = [(r.example_id, r.correct) for r in report.records
            if r.method == "HyperDAS (soft)" and r.split == "test_entity"]  # fmt: skip
    assert sorted(mine) == sorted((j.example_id, j.correct) for j in direct.judgements)
    assert len(mine) == len(data.examples["test_entity"])


def test_a_trained_hyperdas_that_does_not_fit_is_refused(tiny_model, data):
    given = HyperDAS(tiny_model, SETTINGS.hyperdas.with_fields(layer=2, k=4))
    with raises_bad_input("has layer 2, k 4"):
        compare_methods(tiny_model, data, 1, 4, ["HyperDAS"], [0], trained_hyperdas={0: given})
    with raises_bad_input("not among the seeds"):
        compare_methods(tiny_model, data, 2, 4, ["HyperDAS"], [0], trained_hyperdas={3: given})
    with raises_bad_input("needs a given layer"):
        compare_methods(tiny_model, data, [1, 2], 4, ["HyperDAS"], [0], trained_hyperdas={0: given})
    with raises_bad_input("'HyperDAS' is not among the methods"):
        compare_methods(tiny_model, data, 2, 4, ["DAS"], [0], trained_hyperdas={0: given})


def verdicts(report):
    """Every verdict of a report, in a fixed order."""
    return sorted((r.method, r.split, r.example_id, r.correct) for r in report.records)


def test_a_hyperdas_unit_stopped_mid_training_resumes_from_its_checkpoint(
    tiny_model, data, tmp_path, monkeypatch, caplog
):
    settings = dataclasses.replace(
        SETTINGS, hyperdas=SETTINGS.hyperdas.with_fields(checkpoint_every=1)
    )
    real_save = hyperdas_train.save_checkpoint
    saved = []

    def save_then_stop(*args, **kwargs):
        real_save(*args, **kwargs)
        saved.append(kwargs["trainer_state"].step)
        if len(saved) == 2:
            raise Interrupted  # the process dies after step 2's checkpoint

    def run(folder):
        return compare_methods(tiny_model, data, 1, 4, ["HyperDAS"], [0], settings=settings,
                               out_dir=folder)  # fmt: skip

    monkeypatch.setattr(hyperdas_train, "save_checkpoint", save_then_stop)
    with pytest.raises(Interrupted):
        run(tmp_path / "stopped")
    checkpoint = unit_checkpoint_path(tmp_path / "stopped", unit_name("HyperDAS", 0))
    assert saved == [1, 2] and (checkpoint / "config.json").exists()
    monkeypatch.setattr(hyperdas_train, "save_checkpoint", real_save)
    with caplog.at_level("INFO", logger="hyperdas_tl.hyperdas.train"):
        resumed = run(tmp_path / "stopped")
    assert "Resuming HyperDAS training from step 2" in caplog.text
    uninterrupted = run(tmp_path / "whole")
    assert verdicts(resumed) == verdicts(uninterrupted)
    steps = [report.curves["HyperDAS seed 0"]["history"] for report in (resumed, uninterrupted)]
    assert steps[0] == steps[1] and len(steps[0]) == 3  # the resumed unit's history is whole
    # without a run folder there is nowhere to checkpoint: the cadence is dropped, not an error
    compare_methods(tiny_model, data, 1, 4, ["HyperDAS"], [0], settings=settings)


def test_a_das_unit_stopped_part_way_trains_only_its_unfinished_runs(
    tiny_model, data, tmp_path, monkeypatch
):
    real_save, real_train = run_store.save_run, das_search.train_captured
    saved, trained = [], []

    def save_then_stop(path, result):
        real_save(path, result)
        saved.append((result.config.attribute, result.config.lr))
        if len(saved) == 4:
            raise Interrupted  # the process dies with 4 of the unit's 6 runs finished

    def counting(model, captured_train, captured_val, config, start):
        trained.append((config.attribute, config.lr))
        return real_train(model, captured_train, captured_val, config, start)

    def run(folder):
        return compare_methods(tiny_model, data, 1, 4, ["MDAS"], [0], settings=SETTINGS,
                               out_dir=folder)  # fmt: skip

    monkeypatch.setattr(run_store, "save_run", save_then_stop)
    with pytest.raises(Interrupted):
        run(tmp_path / "stopped")
    store = unit_checkpoint_path(tmp_path / "stopped", unit_name("MDAS", 0))
    assert len(list(store.rglob("*.safetensors"))) == 4
    monkeypatch.setattr(run_store, "save_run", real_save)
    monkeypatch.setattr(das_search, "train_captured", counting)
    resumed = run(tmp_path / "stopped")
    attributes = list(data.config.attributes)  # the order the unit trains them in
    assert trained == [(attributes[1], lr) for lr in SETTINGS.das_lrs[1:]]  # only the unfinished
    uninterrupted = run(tmp_path / "whole")
    assert verdicts(resumed) == verdicts(uninterrupted)
    curves = [report.curves["MDAS seed 0"]["attributes"] for report in (resumed, uninterrupted)]
    for attribute in attributes:
        assert curves[0][attribute]["best_lr"] == curves[1][attribute]["best_lr"]
        for a, b in zip(curves[0][attribute]["runs"], curves[1][attribute]["runs"], strict=True):
            a["history"].pop("seconds"), b["history"].pop("seconds")
            assert a == b


def test_the_figure_draws_every_method_with_its_interval(run):
    _, report, *_ = run
    summary = report.summary()
    fig = comparison_figure(summary)
    axes = fig.axes
    assert len(axes) == len(EVAL_SPLITS) * 3
    assert [ax.get_xlabel() for ax in axes[:3]] == [
        "Cause (95 % CI)", "Isolate (95 % CI)", "Disentangle (95 % CI)"
    ]  # fmt: skip
    assert axes[0].get_ylabel().startswith("val_entity") and "cause" in axes[0].get_ylabel()
    assert [t.get_text() for t in axes[0].get_yticklabels()] == list(SCORED)
    disentangle = axes[2]
    bars = [p for p in disentangle.patches]
    cells = summary["city"]["val_entity"]
    assert [round(b.get_width(), 6) for b in bars] == [
        round(cells[m]["disentangle"]["mean"], 6) for m in SCORED
    ]
    assert len(disentangle.collections) >= 1  # the error bars
    no_op = cells["no intervention"]["disentangle"]["mean"]

    def dashed(ax):
        return [line.get_xdata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"]

    assert dashed(disentangle) == [no_op]  # the no-op's bar
    assert dashed(axes[0]) == []  # only Disentangle has it
    with raises_bad_input("not in the summary"):
        comparison_figure(summary, splits=["test_context"])


def test_candidate_layers_are_scored_independently_of_their_order(tiny_model, data):
    """What lets processes share the candidates out: each layer's score depends on the layer
    alone, not on which were scored before it."""
    from hyperdas_tl.compare import choose_layer

    def backwards(layers, score):
        return [score(layer) for layer in reversed(layers)][::-1]

    forwards = choose_layer(tiny_model, data, [1, 2], 4, settings=SETTINGS)
    assert choose_layer(tiny_model, data, [1, 2], 4, settings=SETTINGS, map_layers=backwards) == (
        forwards
    )


def test_longest_first_changes_the_order_units_run_in_not_the_report(
    tiny_model, data, unshared, tmp_path
):
    _, reference = unshared
    ran = []
    report = compare_methods(tiny_model, data, 1, 4, SHARED, [0], settings=SETTINGS,
                             out_dir=tmp_path, on_unit=lambda m, s, t: ran.append(m),
                             longest_first=True)  # fmt: skip
    assert ran == ["random subspace", "no intervention"]
    assert [r.method for r in report.records] == [r.method for r in reference.records]
    assert report.summary() == reference.summary()


def test_ablations_run_only_when_named():
    assert set(compare.DEFAULT_METHODS) == set(METHODS) - {
        "DAS (pooled)", "MDAS (pooled)", "HyperDAS (entity position)"
    }  # fmt: skip
    assert compare.methods.scored_names("HyperDAS (entity position)") == (
        "HyperDAS (entity position)",
    )
