import pytest

from hyperdas_tl.cli import main
from hyperdas_tl.quickstart import entity_swap_demo


@pytest.mark.smollm2
def test_full_entity_patch_moves_the_answer_and_a_random_subspace_does_not(smollm2):
    result = entity_swap_demo(smollm2, layer=4)
    assert result.base_prediction == " France"
    assert result.source_prediction == " Japan"
    assert result.full_patch_prediction == " Japan" and result.full_patch_source_prob > 0.5
    assert result.random_patch_prediction == " France"


def test_cli_quickstart_runs_on_the_tiny_model(capsys):
    assert main(["quickstart", "--model", "tiny-llama", "--device", "cpu", "--layer", "1"]) == 0
    out = capsys.readouterr().out
    assert "full interchange at blocks.1.hook_resid_pre" in out


def test_cli_rejects_an_unknown_model():
    with pytest.raises(SystemExit):
        main(["quickstart", "--model", "gpt-7"])
