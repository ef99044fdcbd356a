import dataclasses

import pytest
import torch
from bad_input import raises_bad_input
from das_planted_task import batches_of, mixed_rows, shared_planted_task

from hyperdas_tl.baselines.das import DASConfig, DASHistory, search, search_lr
from hyperdas_tl.baselines.das.attribute_subspaces import attribute_store
from hyperdas_tl.baselines.das.run_store import load_run, run_path, save_run

CONFIG = DASConfig(layer=1, k=2, epochs=3, objective="mdas", attribute="A", show_progress=False)
LRS = (0.01, 0.03, 0.1)


@pytest.fixture(scope="module")
def planted():
    return shared_planted_task()


@pytest.fixture(scope="module")
def rows(planted):
    train = batches_of(mixed_rows(planted, 64, seed=0, split="train"), 32)
    val = batches_of(mixed_rows(planted, 32, seed=1, split="val"), 64)
    return train, val


def _without_time(history: DASHistory) -> dict:
    return {k: v for k, v in history.to_dict().items() if k != "seconds"}


def _same_search(first, second) -> None:
    assert first.best_index == second.best_index
    for a, b in zip(first.runs, second.runs, strict=True):
        assert a.config == b.config
        assert torch.equal(a.basis, b.basis)  # bit for bit
        assert _without_time(a.history) == _without_time(b.history)
        assert not b.basis.requires_grad and not b.intervention.training


def test_a_stopped_search_trains_only_the_missing_runs_and_equals_the_whole_one(
    planted, rows, tmp_path, monkeypatch
):
    train, val = rows
    whole = search_lr(planted.model, train, val, CONFIG, LRS)
    stored = search_lr(planted.model, train, val, CONFIG, LRS, store=tmp_path)
    _same_search(whole, stored)  # keeping the runs changes nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        run_path(tmp_path, lr).name for lr in LRS
    )
    run_path(tmp_path, LRS[1]).unlink()  # the search stopped while training the second rate
    trained = []
    real = search.train_captured

    def counting(model, captured_train, captured_val, config, start):
        trained.append(config.lr)
        return real(model, captured_train, captured_val, config, start)

    monkeypatch.setattr(search, "train_captured", counting)
    resumed = search_lr(planted.model, train, val, CONFIG, LRS, store=tmp_path)
    assert trained == [LRS[1]]
    _same_search(whole, resumed)
    assert resumed.runs[0].history == stored.runs[0].history  # read back, wall time included

    def no_capture(*args, **kwargs):
        raise AssertionError("nothing is left to train: no activations are captured")

    monkeypatch.setattr(search, "capture", no_capture)
    _same_search(whole, search_lr(planted.model, train, val, CONFIG, LRS, store=tmp_path))
    assert trained == [LRS[1]]


def test_a_stored_run_of_other_settings_or_a_broken_file_is_refused(planted, rows, tmp_path):
    train, val = rows
    found = search_lr(planted.model, train, val, CONFIG, LRS[:1], store=tmp_path)
    path = run_path(tmp_path, LRS[0])
    with raises_bad_input(r"trained with other settings \(differs in \['k'\]\)"):
        search_lr(planted.model, train, val, dataclasses.replace(CONFIG, k=3), LRS[:1],
                  store=tmp_path)  # fmt: skip
    with raises_bad_input("d_model=32, the model has 64"):
        load_run(path, found.runs[0].config, 64)
    save_run(tmp_path / "copy.safetensors", found.runs[0])
    assert torch.equal(load_run(tmp_path / "copy.safetensors", found.runs[0].config, 32).basis,
                       found.best.basis)  # fmt: skip
    path.write_bytes(b"half a file")
    with raises_bad_input("is not a readable stored DAS run"):
        search_lr(planted.model, train, val, CONFIG, LRS[:1], store=tmp_path)
    with raises_bad_input("lrs repeat"):
        search_lr(planted.model, train, val, CONFIG, [0.01, 0.01], store=tmp_path)


def test_history_round_trips_and_refuses_unknown_fields(planted, rows):
    train, val = rows
    history = search_lr(planted.model, train, val, CONFIG, LRS[:1]).best.history
    assert history.curve and DASHistory.from_dict(history.to_dict()) == history
    with raises_bad_input("unknown DASHistory fields"):
        DASHistory.from_dict({**history.to_dict(), "typo": 1})


def test_every_attribute_name_is_its_own_folder(tmp_path):
    names = ["Country", "Past Tense", "a/b", ".", "..", "A", "a"]
    folders = [attribute_store(tmp_path, name) for name in names]
    assert len(set(folders)) == len(names)
    assert all(folder.parent == tmp_path for folder in folders)
