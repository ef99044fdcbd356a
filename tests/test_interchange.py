import pytest
import torch
from bad_input import raises_bad_input

from hyperdas_tl.interchange import (
    check_basis,
    check_selection,
    interchange,
    mix_source,
    one_hot_selection,
    positions_to_selection,
    soft_interchange,
)

D = 16


def random_basis(d: int, k: int, batch: int | None = None) -> torch.Tensor:
    shape = (d, k) if batch is None else (batch, d, k)
    return torch.linalg.qr(torch.randn(*shape)).Q


def test_interchange_equals_textbook_formula():
    base, source = torch.randn(3, 5, D), torch.randn(3, 5, D)
    basis = random_basis(D, 4)
    projector = basis @ basis.T
    expected = base + (source - base) @ projector.T
    assert torch.allclose(interchange(base, source, basis), expected, atol=1e-5)
    # equivalently: swap the subspace component, keep the complement
    swapped = base @ (torch.eye(D) - projector) + source @ projector
    assert torch.allclose(interchange(base, source, basis), swapped, atol=1e-5)


def test_per_example_basis_matches_shared_one_per_row():
    base, source = torch.randn(3, 5, D), torch.randn(3, 5, D)
    bases = random_basis(D, 4, batch=3)
    out = interchange(base, source, bases)
    for b in range(3):
        assert torch.allclose(
            out[b : b + 1], interchange(base[b : b + 1], source[b : b + 1], bases[b]), atol=1e-5
        )


def test_identities():
    base, source = torch.randn(2, 4, D), torch.randn(2, 4, D)
    basis = random_basis(D, 6)
    assert torch.equal(interchange(base, base, basis), base)
    assert torch.equal(interchange(base, source, torch.zeros(D, 0)), base)
    full = random_basis(D, D)
    assert torch.allclose(interchange(base, source, full), source, atol=1e-5)


def test_soft_interchange_one_hot_equals_plain_interchange_at_that_position():
    base, source = torch.randn(2, 5, D), torch.randn(2, 7, D)
    basis = random_basis(D, 3)
    src_pos, base_pos = torch.tensor([6, 2]), torch.tensor([1, 4])
    selection = one_hot_selection(src_pos, base_pos, src_pos=7, base_pos=5)
    out = soft_interchange(base, source, selection, basis)
    for b in range(2):
        for j in range(5):
            if j == base_pos[b]:
                expected = interchange(
                    base[b, j][None, None], source[b, src_pos[b]][None, None], basis
                )
                assert torch.allclose(out[b, j], expected[0, 0], atol=1e-5)
            else:
                assert torch.equal(out[b, j], base[b, j])


def test_mix_source_is_the_weighted_sum():
    base, source = torch.randn(1, 2, D), torch.randn(1, 3, D)
    selection = torch.tensor([[[0.5, 0.0], [0.25, 0.0], [0.0, 0.0], [0.25, 1.0]]])
    mixed = mix_source(base, source, selection)
    assert torch.allclose(mixed[0, 0], 0.5 * source[0, 0] + 0.25 * source[0, 1] + 0.25 * base[0, 0])
    assert torch.equal(mixed[0, 1], base[0, 1])


def test_gradients_reach_basis_and_selection():
    base, source = torch.randn(2, 3, D), torch.randn(2, 4, D)
    raw = torch.randn(D, 2, requires_grad=True)
    logits = torch.randn(2, 5, 3, requires_grad=True)
    out = soft_interchange(base, source, logits.softmax(dim=1), torch.linalg.qr(raw).Q)
    out.square().sum().backward()
    assert raw.grad is not None and raw.grad.abs().sum() > 0
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_positions_to_selection_columns_sum_to_one_and_reject_duplicates():
    sel = positions_to_selection(
        torch.tensor([[0, 2]]), torch.tensor([[1, 3]]), src_pos=3, base_pos=4
    )
    assert torch.allclose(sel.sum(dim=1), torch.ones(1, 4))
    assert sel[0, 0, 1] == 1 and sel[0, 2, 3] == 1 and sel[0, 3, 0] == 1
    with pytest.raises(ValueError, match="more than once"):
        positions_to_selection(
            torch.tensor([[0, 1]]), torch.tensor([[2, 2]]), src_pos=3, base_pos=4
        )
    with pytest.raises(ValueError, match="out of range"):
        one_hot_selection(torch.tensor([5]), torch.tensor([0]), src_pos=3, base_pos=4)


def test_bad_basis_and_selection_raise_clear_errors():
    with pytest.raises(ValueError, match="d_model=8"):
        check_basis(random_basis(8, 2), D)
    with pytest.raises(ValueError, match="not orthonormal"):
        check_basis(torch.randn(D, 3), D)
    with pytest.raises(ValueError, match="not orthonormal"):
        check_basis(torch.full((D, 2), float("nan")), D)
    with pytest.raises(ValueError, match="src_pos \\+ 1"):
        check_selection(torch.ones(1, 3, 4) / 3, batch=1, src_pos=3, base_pos=4)
    with pytest.raises(ValueError, match="sum to 1"):
        check_selection(torch.ones(1, 4, 4), batch=1, src_pos=3, base_pos=4)
    with raises_bad_input("same shape"):
        interchange(torch.randn(1, 2, D), torch.randn(1, 3, D), random_basis(D, 2))
    with raises_bad_input("basis"):
        interchange(torch.randn(1, 2, D), torch.randn(1, 2, D), random_basis(8, 2))


def test_soft_mix_is_safe_against_zero_times_inf():
    base, source = torch.randn(2, 4, D), torch.randn(2, 5, D)
    source[:, 1, 3] = float("inf")  # position 1 holds inf ...
    source[:, 2] = float("nan")  # ... and position 2 NaN
    raw = torch.rand(2, 6, 4)
    raw[:, 1:3] = 0.0  # ... but no base position reads them
    raw = raw.requires_grad_(True)
    selection = raw / raw.sum(dim=1, keepdim=True)
    mixed = mix_source(base, source, selection)
    assert bool(torch.isfinite(mixed).all())
    clean = source.clone()
    clean[:, 1:3] = 0.0
    assert torch.allclose(mixed, mix_source(base, clean, selection), atol=1e-6)
    out = soft_interchange(base, source, selection, random_basis(D, 4))
    out.sum().backward()
    assert bool(torch.isfinite(out).all()) and bool(torch.isfinite(raw.grad).all())


def test_soft_mix_reading_a_non_finite_source_is_not_finite():
    base, source = torch.randn(1, 3, D), torch.randn(1, 4, D)
    source[0, 2, 0] = float("inf")
    selection = one_hot_selection(torch.tensor([2]), torch.tensor([1]), src_pos=4, base_pos=3)
    mixed = mix_source(base, source, selection)
    assert not bool(torch.isfinite(mixed[0, 1]).any())  # the position that reads it
    assert torch.equal(mixed[0, [0, 2]], base[0, [0, 2]])  # the others keep the base exactly
    base[0, 0, 5] = float("inf")  # a non-finite base vector with null weight 0 is skipped too
    full = positions_to_selection(
        torch.tensor([[0, 1, 3]]), torch.tensor([[0, 1, 2]]), src_pos=4, base_pos=3
    )
    assert bool(torch.isfinite(mix_source(base, source.nan_to_num(posinf=0.0), full)).all())
