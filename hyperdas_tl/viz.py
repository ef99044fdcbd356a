"""circuitsvis views of a HyperDAS selection, saved as self-contained HTML that draws offline.

A HyperDAS selection ``A`` for one example is ``[src_pos + 1, base_pos]``: column ``j`` says how
much base position ``j`` reads from each source position, the last row is the null ("keep
base") slot, and every column sums to 1 (the layout of :mod:`hyperdas_tl.interchange`).

- :func:`selection_pattern_html`: ``A`` as an attention pattern, base positions as queries
  (destination) and source positions + null as keys. Several read-outs (``{"soft": A,
  "one_to_many": A1, "one_to_one": A2}``) are shown as heads of one view.
- :func:`token_weights_html`: tokens coloured by a weight; :func:`base_token_weights` (``1 -
  null weight``, how much of a base token is replaced) and :func:`source_token_weights` (the
  total weight a source token gives out) are the two weights worth showing, and
  :func:`selection_tokens_html` shows both for one selection.
- :func:`save_html`: one or several views as one HTML file.
- :func:`householder_pca_figure`: the Householder vectors' PCA scatter (a matplotlib figure, the
  one plot both notebook 4 and ``analyses/run_faithfulness.py`` draw).

Offline rendering. circuitsvis's own ``RenderedHTML`` loads its JavaScript from unpkg unless a
one-second probe of google.com fails, and its ``str()`` is always the CDN version. The wheel
ships the browser bundle itself (``circuitsvis/dist/cdn/iife.js``, an IIFE that defines the global
``CircuitsVis`` with ``render`` and every React component); a :class:`View` inlines that bundle
once and mounts each panel with ``CircuitsVis.render(id, CircuitsVis.<Component>, props)``, so
what Jupyter shows and what :func:`save_html` writes load nothing from the network.

circuitsvis's ``AttentionPattern`` is square (one token list for both axes), so the
``[src_pos + 1, base_pos]`` matrix is placed in the block ``dest = base, src = source + null``
of the pattern over the concatenated sequence ``S0:.. S1:.. ∅:keep B0:.. B1:..``. Every other
cell is zero (white) or, above the diagonal, greyed as masked; the axis labels' ``(n)`` is the
index in that concatenated sequence, the ``S``/``B`` prefix the position in source/base.
"""

import functools
import html
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from uuid import uuid4

import torch
from jaxtyping import Float
from torch import Tensor

from hyperdas_tl.interchange import SELECTION_SUM_ATOL, check_selection

logger = logging.getLogger(__name__)

NULL_TOKEN = "∅:keep"
"""Label of the null ("keep base") key in :func:`selection_pattern_html`."""

PANEL_MAX_WIDTH_PX = 760
"""Panels are at most this wide (circuitsvis's attention pattern otherwise fills the page)."""

_BUNDLE = ("dist", "cdn", "iife.js")


@functools.cache
def circuitsvis_bundle() -> str:
    """circuitsvis's browser bundle from the installed wheel, safe to inline in ``<script>``.

    ``</script`` inside the bundle (one string literal in React DOM) is written ``<\\/script``,
    which means the same in JavaScript, and the source-map comment is dropped (it would point
    at a file next to the saved HTML)."""
    path = resources.files("circuitsvis").joinpath(*_BUNDLE)
    if not path.is_file():
        raise FileNotFoundError(
            f"circuitsvis's JavaScript bundle {'/'.join(_BUNDLE)} is missing from the installed "
            "circuitsvis package; reinstall circuitsvis (>= 1.43) to render views offline"
        )
    source = path.read_text(encoding="utf-8")
    source = re.sub(r"</(script)", r"<\\/\1", source, flags=re.IGNORECASE)
    return re.sub(r"^//# sourceMappingURL=.*$", "", source, flags=re.MULTILINE)


def _props_json(props: Mapping[str, Any]) -> str:
    """JSON for a component's props (tensors as nested lists, ``None`` left out), with ``<``,
    ``>`` and ``&`` escaped so a token such as ``</script>`` cannot end the script."""
    clean = {
        key: value.tolist() if isinstance(value, Tensor) else value
        for key, value in props.items()
        if value is not None
    }
    text = json.dumps(clean)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@dataclass(frozen=True)
class Panel:
    """One circuitsvis component with its props, under an optional title."""

    component: str
    """Name of the circuitsvis React component (``AttentionHeads``, ``ColoredTokens``, ...)."""
    props: str = field(repr=False)
    """The component's props as a JSON object (see :func:`_props_json`)."""
    title: str | None = None
    """Heading shown above the panel."""


@dataclass(frozen=True)
class View:
    """One or more circuitsvis panels; displays in Jupyter and saves with :func:`save_html`.

    ``view_a + view_b`` puts the panels of both in one view (one copy of the JavaScript)."""

    panels: tuple[Panel, ...]

    def __post_init__(self) -> None:
        if not self.panels:
            raise ValueError("a View needs at least one panel")

    def __add__(self, other: "View") -> "View":
        if not isinstance(other, View):
            return NotImplemented
        return View(self.panels + other.panels)

    def to_html_fragment(self) -> str:
        """The view as an HTML fragment with the JavaScript inlined (what Jupyter shows).

        Element ids are fresh on every call, so showing the same view twice on one page works."""
        ids = [f"hyperdas-tl-{uuid4().hex[:12]}" for _ in self.panels]
        blocks, calls = [], []
        for panel, element_id in zip(self.panels, ids, strict=True):
            if panel.title:
                blocks.append(f'<h4 style="margin: 12px 0 4px">{html.escape(panel.title)}</h4>')
            blocks.append(
                f'<div id="{element_id}" style="max-width: {PANEL_MAX_WIDTH_PX}px; '
                'margin: 4px 0 15px"></div>'
            )
            calls.append(
                f'CircuitsVis.render("{element_id}", CircuitsVis.{panel.component}, {panel.props});'
            )
        return "\n".join(
            [
                '<div class="hyperdas-tl-view">',
                *blocks,
                '<script type="module">',
                circuitsvis_bundle(),
                *calls,
                "</script>",
                "</div>",
            ]
        )

    def to_html(self, title: str = "hyperdas_tl view") -> str:
        """A complete, self-contained HTML document for the view."""
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(title)}</title>\n</head>\n<body>\n"
            f"{self.to_html_fragment()}\n</body>\n</html>\n"
        )

    def _repr_html_(self) -> str:
        return self.to_html_fragment()


def _panel(component: str, title: str | None, **props: Any) -> View:
    return View((Panel(component, _props_json(props), title),))


def _check_tokens(tokens: Sequence[str], length: int, name: str, axis: str) -> list[str]:
    if isinstance(tokens, str) or not all(isinstance(token, str) for token in tokens):
        raise ValueError(f"{name} must be a sequence of strings (one per token)")
    if len(tokens) != length:
        raise ValueError(
            f"{name} has {len(tokens)} tokens but the weights have {axis} = {length} positions"
        )
    return list(tokens)


def _check_one_selection(
    selection: Tensor, name: str, atol: float
) -> Float[Tensor, "src_pos_plus_null base_pos"]:
    if selection.ndim != 2 or selection.shape[0] < 1:
        raise ValueError(
            f"{name} must be one example's selection [src_pos + 1, base_pos] (null row last), "
            f"got shape {tuple(selection.shape)}; index the batch first, e.g. selection[0]"
        )
    rows, base_pos = selection.shape
    try:
        check_selection(selection.detach()[None], 1, rows - 1, base_pos, atol=atol)
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None
    return selection.detach().float().cpu()


def _as_read_outs(
    selection: Float[Tensor, "src_pos_plus_null base_pos"]
    | Mapping[str, Float[Tensor, "src_pos_plus_null base_pos"]],
    atol: float,
) -> dict[str, Tensor]:
    if isinstance(selection, Tensor):
        return {"selection": _check_one_selection(selection, "selection", atol)}
    if not selection:
        raise ValueError("selection must be a tensor or a non-empty {read-out name: tensor} dict")
    read_outs = {
        str(name): _check_one_selection(weights, f"selection[{name!r}]", atol)
        for name, weights in selection.items()
    }
    shapes = {name: tuple(weights.shape) for name, weights in read_outs.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"all read-outs must have the same shape, got {shapes}")
    return read_outs


def selection_pattern_html(
    selection: Float[Tensor, "src_pos_plus_null base_pos"]
    | Mapping[str, Float[Tensor, "src_pos_plus_null base_pos"]],
    source_tokens: Sequence[str],
    base_tokens: Sequence[str],
    *,
    title: str | None = None,
    atol: float = SELECTION_SUM_ATOL,
) -> View:
    """One example's selection as a circuitsvis attention pattern (base attends to source).

    Args:
        selection: ``[src_pos + 1, base_pos]`` weights, null row last, columns summing to 1;
            or a dict of such read-outs (e.g. ``{"soft": A, "one_to_many": A1, "one_to_one":
            A2}``), shown as heads (hover a thumbnail to show it, click to lock).
        source_tokens: the ``src_pos`` source tokens (as strings).
        base_tokens: the ``base_pos`` base tokens.
        title: heading above the view.
        atol: tolerance on the column sums.

    Raises:
        ValueError: a selection that is not 2-D, has a column that does not sum to 1 (or a
            negative entry), read-outs of different shapes, or token lists whose lengths do
            not match the selection.
    """
    read_outs = _as_read_outs(selection, atol)
    rows, base_pos = next(iter(read_outs.values())).shape
    src_pos = rows - 1
    source = _check_tokens(source_tokens, src_pos, "source_tokens", "src_pos")
    base = _check_tokens(base_tokens, base_pos, "base_tokens", "base_pos")

    tokens = (
        [f"S{i}:{token}" for i, token in enumerate(source)]
        + [NULL_TOKEN]
        + [f"B{j}:{token}" for j, token in enumerate(base)]
    )
    length = len(tokens)
    patterns = []
    for weights in read_outs.values():
        pattern = torch.zeros(length, length)
        pattern[rows:, :rows] = weights.T  # dest = base position, src = source position or null
        patterns.append(pattern)

    if isinstance(selection, Tensor):
        return _panel(
            "AttentionPattern",
            title,
            tokens=tokens,
            attention=patterns[0],
            maxValue=1.0,
            minValue=-1.0,
            showAxisLabels=True,
        )
    return _panel(
        "AttentionHeads",
        title,
        tokens=tokens,
        attention=torch.stack(patterns),
        attentionHeadNames=list(read_outs),
        maxValue=1.0,
        minValue=-1.0,
    )


def base_token_weights(
    selection: Float[Tensor, "src_pos_plus_null base_pos"],
) -> Float[Tensor, " base_pos"]:
    """How much of each base token is replaced: ``1 - A[null, j]``."""
    return 1.0 - selection.detach()[-1]


def source_token_weights(
    selection: Float[Tensor, "src_pos_plus_null base_pos"],
) -> Float[Tensor, " src_pos"]:
    """The total weight each source token gives out: ``Σ_j A[i, j]`` (can exceed 1)."""
    return selection.detach()[:-1].sum(dim=-1)


def token_weights_html(
    tokens: Sequence[str],
    weights: Float[Tensor, " pos"],
    *,
    title: str | None = None,
    max_value: float | None = 1.0,
) -> View:
    """Tokens coloured by a non-negative weight (circuitsvis ``ColoredTokens``; hover a token
    for its value).

    Args:
        tokens: one string per position.
        weights: ``[pos]`` weights, e.g. :func:`base_token_weights` or
            :func:`source_token_weights`.
        title: heading above the tokens.
        max_value: weight drawn at full colour; ``None`` uses the largest weight.

    Raises:
        ValueError: ``weights`` not 1-D, negative or non-finite, or a token count that differs
            from the number of weights.
    """
    if weights.ndim != 1:
        raise ValueError(f"weights must be 1-D [pos], got shape {tuple(weights.shape)}")
    values = weights.detach().float().cpu()
    if not bool(torch.isfinite(values).all()) or bool((values < 0).any()):
        raise ValueError("weights must be finite and non-negative")
    token_list = _check_tokens(tokens, values.shape[0], "tokens", "pos")
    if max_value is None:
        max_value = max(float(values.max()) if values.numel() else 0.0, 1e-12)
    elif max_value <= 0:
        raise ValueError(f"max_value must be positive, got {max_value}")
    return _panel(
        "ColoredTokens", title, tokens=token_list, values=values, minValue=0.0, maxValue=max_value
    )


def selection_tokens_html(
    selection: Float[Tensor, "src_pos_plus_null base_pos"],
    source_tokens: Sequence[str],
    base_tokens: Sequence[str],
    *,
    name: str | None = None,
    atol: float = SELECTION_SUM_ATOL,
) -> View:
    """Base tokens coloured by ``1 - null weight`` and source tokens by the weight they give out
    (scaled to the largest), for one example's selection; ``name`` labels the read-out."""
    weights = _check_one_selection(selection, "selection", atol)
    suffix = f" ({name})" if name else ""
    return token_weights_html(
        base_tokens, base_token_weights(weights), title=f"base: 1 - null weight{suffix}"
    ) + token_weights_html(
        source_tokens,
        source_token_weights(weights),
        title=f"source: weight given out{suffix}",
        max_value=None,
    )


def save_html(view: View | Sequence[View], path: str | Path, *, title: str | None = None) -> Path:
    """Write one view (or several, one after the other) as a self-contained HTML file.

    The circuitsvis JavaScript is inlined once; the file loads nothing from the network.
    Parent folders are created. Returns the path written."""
    views = [view] if isinstance(view, View) else list(view)
    if not views or not all(isinstance(item, View) for item in views):
        raise ValueError("save_html needs a View or a non-empty sequence of Views")
    combined = functools.reduce(View.__add__, views)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(combined.to_html(title or path.stem), encoding="utf-8")
    logger.info("saved %d panel(s) to %s", len(combined.panels), path)
    return path


def householder_pca_figure(
    projection: Float[Tensor, "n 2"],
    attributes: Sequence[str],
    explained_variance: tuple[float, float],
    *,
    title: str = "Householder vectors v(e)",
    point_size: float = 12,
) -> Any:
    """The reflection vectors ``v(e)`` on their first two principal components, one colour per
    attribute (the fields of :class:`~hyperdas_tl.faithfulness.HouseholderVectors`), as a
    ``matplotlib.figure.Figure`` (no pyplot state: save it with ``fig.savefig``, show it with
    ``display(fig)``). Needs matplotlib (the ``dev`` extra)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as error:  # matplotlib is a dev dependency
        raise ImportError(
            "householder_pca_figure needs matplotlib (pip install matplotlib)"
        ) from error
    if projection.ndim != 2 or projection.shape[1] != 2 or projection.shape[0] != len(attributes):
        raise ValueError(
            f"projection must be [n={len(attributes)}, 2], got {tuple(projection.shape)}"
        )
    fig = Figure(figsize=(4.5, 4))
    ax = fig.add_subplot()
    points_all = projection.detach().cpu().numpy()
    for i, attribute in enumerate(sorted(set(attributes))):
        points = points_all[[a == attribute for a in attributes]]
        ax.scatter(points[:, 0], points[:, 1], s=point_size, color=f"C{i}", label=attribute)
    ax.set_xlabel(f"PC1 ({explained_variance[0]:.0%})")
    ax.set_ylabel(f"PC2 ({explained_variance[1]:.0%})")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig
