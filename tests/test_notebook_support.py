from dataclasses import replace

from hyperdas_tl.hyperdas.checkpoint import read_checkpoint_config, save_checkpoint
from hyperdas_tl.hyperdas.model import HyperDAS
from hyperdas_tl.notebook_support import MODEL_NAME, _as_json, _wanted_config, notebook_profile


def test_a_checkpoint_trained_for_the_profile_is_recognised(tiny_model, tmp_path):
    """Notebooks 3 and 4 reuse notebook 2's checkpoint only when its config equals the wanted
    one; a field HyperDAS records when built (the target's dtype) must be in the wanted one too,
    or every notebook trains again."""
    profile = notebook_profile("small")
    hyperdas = profile.hyperdas.with_fields(
        layer=1, n_hypernet_layers=1, n_selection_heads=4,
        target_model=MODEL_NAME, data=profile.data.to_dict(),
    )  # fmt: skip
    profile = replace(profile, hyperdas=hyperdas)
    save_checkpoint(tmp_path / "checkpoint", HyperDAS(tiny_model, hyperdas))
    found, _ = read_checkpoint_config(tmp_path / "checkpoint")
    assert _as_json(found.to_dict()) == _as_json(_wanted_config(profile, tiny_model))
