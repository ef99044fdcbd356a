"""Views of a HyperDAS selection: shapes and errors, self-contained HTML, and a real render.

The rendering tests open saved views in headless Chromium with every host name unresolvable
(so nothing can come from the network) and check that the visualisation drew: the DOM after
JavaScript holds the circuitsvis elements, and the screenshot shows the selected cells in the
attention pattern's full positive colour. They are skipped when no Chromium binary is found
(``.ci/run`` installs Debian's ``chromium``).
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import circuitsvis
import numpy as np
import pytest
import torch
from bad_input import raises_bad_input
from matplotlib import image

from hyperdas_tl.viz import (
    NULL_TOKEN,
    View,
    base_token_weights,
    save_html,
    selection_pattern_html,
    selection_tokens_html,
    source_token_weights,
    token_weights_html,
)

SOURCE = ["The", "city", "Paris", "is"]
BASE = ["Tokyo", "is", "in", "Japan", "."]

# Every host name fails to resolve: a view that needs the network cannot draw.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--virtual-time-budget=5000",
]
BLUE = (0, 0, 255)  # circuitsvis's positive colour at the maximum value


def hard_selection() -> torch.Tensor:
    """One-hot ``[src_pos + 1, base_pos]``: B0<-S2, B1<-S3, B2 keeps, B3<-S0, B4 keeps."""
    selection = torch.zeros(len(SOURCE) + 1, len(BASE))
    for src, base in [(2, 0), (3, 1), (4, 2), (0, 3), (4, 4)]:
        selection[src, base] = 1.0
    return selection


def soft_selection() -> torch.Tensor:
    return torch.softmax(3 * torch.randn(len(SOURCE) + 1, len(BASE)), dim=0)


def props_of(view: View, index: int = 0) -> dict:
    return json.loads(view.panels[index].props)


# --- shapes, values and errors -------------------------------------------------------------


def test_pattern_places_selection_in_base_by_source_block():
    selection = soft_selection()
    props = props_of(selection_pattern_html(selection, SOURCE, BASE))
    tokens, pattern = props["tokens"], torch.tensor(props["attention"])
    rows = len(SOURCE) + 1
    assert tokens[: len(SOURCE)] == [f"S{i}:{t}" for i, t in enumerate(SOURCE)]
    assert tokens[len(SOURCE)] == NULL_TOKEN
    assert tokens[rows:] == [f"B{j}:{t}" for j, t in enumerate(BASE)]
    assert pattern.shape == (rows + len(BASE),) * 2
    torch.testing.assert_close(pattern[rows:, :rows], selection.T)  # dest = base, src = source
    assert pattern.sum() == pytest.approx(len(BASE))  # nothing outside the block
    torch.testing.assert_close(pattern[rows:].sum(dim=1), torch.ones(len(BASE)))


def test_several_read_outs_become_heads():
    soft = soft_selection()
    read_outs = {"soft": soft, "one_to_many": hard_selection(), "one_to_one": hard_selection()}
    view = selection_pattern_html(read_outs, SOURCE, BASE, title="example 0")
    assert view.panels[0].component == "AttentionHeads"
    assert view.panels[0].title == "example 0"
    props = props_of(view)
    assert props["attentionHeadNames"] == list(read_outs)
    assert torch.tensor(props["attention"]).shape == (3, 10, 10)


def test_token_weights():
    selection = hard_selection()
    torch.testing.assert_close(base_token_weights(selection), torch.tensor([1.0, 1, 0, 1, 0]))
    torch.testing.assert_close(source_token_weights(selection), torch.tensor([1.0, 0, 1, 1]))
    soft = soft_selection()
    assert source_token_weights(soft).sum() + soft[-1].sum() == pytest.approx(len(BASE))

    props = props_of(token_weights_html(BASE, base_token_weights(selection)))
    assert props["tokens"] == BASE and props["values"] == [1.0, 1, 0, 1, 0]
    assert (props["minValue"], props["maxValue"]) == (0.0, 1.0)
    view = selection_tokens_html(soft, SOURCE, BASE, name="soft")
    assert [panel.component for panel in view.panels] == ["ColoredTokens"] * 2
    assert props_of(view, 1)["maxValue"] == pytest.approx(float(source_token_weights(soft).max()))


def test_bad_selections_raise():
    with raises_bad_input("sum to 1"):
        selection_pattern_html(0.5 * hard_selection(), SOURCE, BASE)
    negative = hard_selection()
    negative[0, 0], negative[1, 0] = -0.5, 0.5
    with raises_bad_input("non-negative"):
        selection_pattern_html(negative + 0.0, SOURCE, BASE)
    with raises_bad_input("one example"):
        selection_pattern_html(hard_selection()[None], SOURCE, BASE)
    with raises_bad_input("same shape"):
        selection_pattern_html({"a": hard_selection(), "b": hard_selection()[:, :3]}, SOURCE, BASE)
    with raises_bad_input("non-empty"):
        selection_pattern_html({}, SOURCE, BASE)


def test_token_lengths_must_match():
    with raises_bad_input("source_tokens has 3 tokens but .* src_pos = 4"):
        selection_pattern_html(hard_selection(), SOURCE[:3], BASE)
    with raises_bad_input("base_tokens has 6 tokens but .* base_pos = 5"):
        selection_pattern_html(hard_selection(), SOURCE, [*BASE, "!"])
    with raises_bad_input("sequence of strings"):
        selection_pattern_html(hard_selection(), "The city", BASE)
    with raises_bad_input("tokens has 4 tokens"):
        token_weights_html(BASE[:4], torch.ones(5))
    with raises_bad_input("non-negative"):
        token_weights_html(BASE, -torch.ones(5))
    with raises_bad_input("1-D"):
        token_weights_html(BASE, torch.ones(5, 1))


# --- self-contained HTML -------------------------------------------------------------------


def test_saved_html_is_self_contained(tmp_path):
    view = selection_pattern_html(hard_selection(), SOURCE, BASE, title="</script><b>x")
    path = save_html(
        [view, selection_tokens_html(hard_selection(), SOURCE, ["</script>", *BASE[1:]])],
        tmp_path / "nested" / "view.html",
    )
    assert path == tmp_path / "nested" / "view.html" and path.is_file()
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\bsrc\s*=", text, re.IGNORECASE)
    assert not re.search(r"""\bimport\b[^;]*?\bfrom\s*["']https?://""", text)
    assert not re.search(r"<link[^>]*\bhref\s*=\s*[\"']https?://", text, re.IGNORECASE)
    assert "unpkg" not in text and "sourceMappingURL" not in text
    # The bundle is inlined exactly once; user strings cannot close the script early.
    assert text.count("var CircuitsVis=") == 1
    assert len(re.findall(r"</script", text, re.IGNORECASE)) == 1
    assert text.count("CircuitsVis.render(") == 3
    assert "&lt;/script&gt;&lt;b&gt;x" in text


def test_repr_html_is_inline_and_ids_are_fresh():
    view = token_weights_html(BASE, torch.ones(5))
    first, second = view._repr_html_(), view._repr_html_()
    assert "var CircuitsVis=" in first and "unpkg" not in first
    ids = [re.findall(r'id="(hyperdas-tl-[0-9a-f]+)"', html)[0] for html in (first, second)]
    assert ids[0] != ids[1]
    with pytest.raises(ValueError, match="at least one panel"):
        View(())


# --- rendering in headless Chromium --------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if binary := shutil.which(name):
            return binary
    pytest.skip("no chromium binary on PATH (.ci/run installs Debian's chromium)")


def run_chromium(binary: str, tmp_path: Path, page: Path, *args: str) -> str:
    result = subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args, page.as_uri()],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return result.stdout.decode("utf-8", errors="replace")


def test_saved_views_draw_offline(chromium, tmp_path):
    read_outs = {"soft": soft_selection(), "one_to_many": hard_selection()}
    page = save_html(
        [
            selection_pattern_html(read_outs, SOURCE, BASE),
            selection_tokens_html(hard_selection(), SOURCE, BASE),
        ],
        tmp_path / "views.html",
    )
    dom = run_chromium(chromium, tmp_path, page, "--dump-dom")
    body = dom.split("<script", 1)[0]  # what React rendered, before the inline bundle
    assert "Head Selector" in body
    assert body.count("<canvas") >= 3  # two head thumbnails and the zoomed pattern
    assert body.count('class="colored-tokens"') == 2
    for token in BASE:
        assert f">{token}</span>" in body
    assert "rgb(0, 0, 255)" in body  # a token with weight 1 at full colour


def test_pattern_screenshot_shows_the_selected_cells(chromium, tmp_path):
    page = save_html(selection_pattern_html(hard_selection(), SOURCE, BASE), tmp_path / "p.html")
    png = tmp_path / "p.png"
    run_chromium(chromium, tmp_path, page, f"--screenshot={png}", "--window-size=900,900")
    pixels = np.round(image.imread(png)[..., :3] * 255).astype(np.uint8)
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    blue = int(np.all(pixels == BLUE, axis=-1).sum())
    # Five cells at weight 1 (three source tokens, two on the null key), each some 60 px
    # square at this size; grey axis labels and the masked triangle alone give no pure blue.
    assert colours > 20, colours
    assert blue > 5 * 400, blue


def test_circuitsvis_cdn_html_does_not_draw_offline(chromium, tmp_path):
    """The control: circuitsvis's CDN HTML (its ``str()``) draws nothing without the network,
    so the checks above do tell a drawn view from an undrawn one."""
    cdn = circuitsvis.tokens.colored_tokens(tokens=BASE, values=torch.ones(5))
    page = tmp_path / "cdn.html"
    page.write_text(f"<!DOCTYPE html><html><body>{cdn}</body></html>", encoding="utf-8")
    body = run_chromium(chromium, tmp_path, page, "--dump-dom").split("<script", 1)[0]
    assert 'class="colored-tokens"' not in body


def test_householder_pca_figure_draws_one_series_per_attribute(tmp_path):
    from hyperdas_tl.viz import householder_pca_figure

    projection = torch.tensor([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]])
    attributes = ["Country", "Continent", "Country", "Country"]
    fig = householder_pca_figure(projection, attributes, (0.6, 0.3), title="v(e)")
    ax = fig.axes[0]
    assert [c.get_offsets().shape[0] for c in ax.collections] == [1, 3]  # sorted attributes
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Continent", "Country"]
    assert ax.get_xlabel() == "PC1 (60%)" and ax.get_title() == "v(e)"
    fig.savefig(tmp_path / "pca.png")
    assert (tmp_path / "pca.png").stat().st_size > 0
    with pytest.raises(ValueError, match="projection"):
        householder_pca_figure(projection[:3], attributes, (0.6, 0.3))
