"""The comparison's figure: Cause / Isolate / Disentangle per method with their 95 % intervals as
error bars, one row of panels per split, drawn from a ``summary.json`` (so a reader can redraw
it from the committed file, and the notebook and the analyses script draw the same figure)."""

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hyperdas_tl.compare.methods import NO_INTERVENTION
from hyperdas_tl.compare.scores import METRICS

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def summary_domain(summary: Mapping[str, Any]) -> str:
    """The one domain a ``summary.json`` holds (its only key besides ``"differences"``)."""
    domains = [key for key in summary if key != "differences"]
    if len(domains) != 1:
        raise ValueError(f"a summary holds one domain besides 'differences', got {domains}")
    return domains[0]


def comparison_figure(
    summary: Mapping[str, Any],
    *,
    splits: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    title: str | None = None,
) -> "Figure":
    """Bars of every method's Cause / Isolate / Disentangle with 95 % interval error bars.

    Args:
        summary: ``ComparisonReport.summary()`` or a ``summary.json`` read back.
        splits: rows of panels (default: every split of the summary, in its order).
        methods: bars, in this order (default: the summary's order).
        title: figure title (default: the domain).
    """
    import matplotlib.pyplot as plt

    domain = summary_domain(summary)
    by_split = summary[domain]
    splits = list(splits or by_split)
    missing = [s for s in splits if s not in by_split]
    if missing or not splits:
        raise ValueError(f"splits {missing or splits} not in the summary ({list(by_split)})")
    methods = list(methods or next(iter(by_split.values())))
    fig, axes = plt.subplots(
        len(splits),
        len(METRICS),
        figsize=(3.6 * len(METRICS), 0.35 * len(methods) + 1.6 * len(splits) + 0.6),
        sharey=True,
        squeeze=False,
    )
    positions = list(range(len(methods)))
    for row, split in enumerate(splits):
        cells = by_split[split]
        unknown = [m for m in methods if m not in cells]
        if unknown:
            raise ValueError(f"methods {unknown} have no scores on {split!r}")
        for col, metric in enumerate(METRICS):
            ax = axes[row][col]
            for i, method in enumerate(methods):
                cell = cells[method][metric]
                if cell is None:
                    continue
                err = [[cell["mean"] - cell["lo"]], [cell["hi"] - cell["mean"]]]
                ax.barh(i, cell["mean"], xerr=err, color=f"C{i % 10}", capsize=3)
            # the no-op's Disentangle, dashed: the bar a method must clear to have done anything
            no_op = cells.get(NO_INTERVENTION, {}).get(metric) if metric == "disentangle" else None
            if no_op is not None:
                ax.axvline(no_op["mean"], color="black", linestyle="--", linewidth=0.8)
            ax.set_xlim(0, 1)
            ax.set_xlabel(f"{metric.capitalize()} (95 % CI)")
            ax.set_yticks(positions, methods)
            if col == 0:
                n = cells[methods[0]]
                ax.set_ylabel(f"{split}\n(n {n['n_cause']} cause / {n['n_isolate']} isolate)")
    axes[0][0].invert_yaxis()  # the y axis is shared: first method on top in every panel
    fig.suptitle(title or domain)
    fig.tight_layout()
    return fig
