"""What the report shows of text from outside (escaped, never markup), its --out checks and honest summaries."""

from __future__ import annotations

import re

import numpy as np
from markdown_it import MarkdownIt

from backprop_conformance import reference
from backprop_conformance.cli import main
from backprop_conformance.report.content import Code, Literal, strip_controls
from backprop_conformance.report.document import FIGURE_FILES
from backprop_conformance.report.publish import generate
from backprop_conformance.report.render_html import render_html
from backprop_conformance.report.render_markdown import render_markdown

HOSTILE = "<script>alert(1)</script>\n# heading ```fence `x` **bold** [link](http://x) \x1b[31mred\x1b[0m " \
          "\x1b]8;;http://evil\x07osc\x1b]8;;\x07 $\\frac{x}$ | pipe"
CALLS: list[str] = []


class Hostile:
    """A correct adapter with a hostile name, whose every call also fails with a hostile message on mse."""

    name = HOSTILE

    def loss_and_gradients(self, network, params, x, y):
        CALLS.append("called")
        if network.loss == "mse":
            raise ValueError(HOSTILE)
        return reference.loss_and_gradients(network, params, x, y)


class WrongLoss:
    """Right gradients, a loss off by 1e-3 relative: the loss fails, the gradients pass."""

    name = "wrong-loss"

    def loss_and_gradients(self, network, params, x, y):
        value, grads = reference.loss_and_gradients(network, params, x, y)
        return value * (1 + 1e-3), grads


def test_text_from_outside_is_never_markup_in_markdown_or_html(tmp_path):
    out = tmp_path / "out"
    generate(out, [f"{__name__}:Hostile"], ["float64"], seed=0, examples=3)
    markdown = (out / "agreement.md").read_text()
    page = (out / "agreement.html").read_text()
    # The Markdown as a CommonMark renderer (raw HTML allowed, as CommonMark allows it) turns it into HTML.
    rendered = MarkdownIt("commonmark").render(markdown)
    for text in (rendered, page):
        assert "<script>" not in text and "<strong>" not in text and 'href="http://x"' not in text
        assert "\x1b" not in text and "\x07" not in text
        assert "&lt;script&gt;" in text
    assert "\x1b" not in markdown
    ours = [line for line in markdown.splitlines() if line.startswith("#")]
    assert rendered.count("<h1>") + rendered.count("<h2>") == len(ours)
    # The figures were drawn (a $...$ label would have crashed mathtext) and embedded.
    assert page.count('src="data:image/png;base64,') == len(FIGURE_FILES)


def test_renderers_escape_literal_and_code_segments():
    blocks = [("paragraph", ("ours ", Code("a`b"), " then ", Literal("**x** <b>&amp;"))),
              ("table", ["h"], [["<i>|</i>"]]), ("details", "<s>", "print('```')")]
    markdown = render_markdown(blocks)
    assert "``a`b``" in markdown and r"\*\*x\*\* \<b\>\&amp;" in markdown
    assert r"\<i\>\|\</i\>" in markdown
    assert "````python" in markdown  # a fence longer than the snippet's own
    page = render_html(blocks, {})
    assert "<code>a`b</code>" in page and "**x** &lt;b&gt;&amp;amp;" in page and "&lt;i&gt;|&lt;/i&gt;" in page


def test_strip_controls_removes_ansi_and_osc_sequences():
    assert strip_controls("a\x1b[1;31mb\x1b[0m\x1b]8;;http://x\x07c\x1b]8;;\x1b\\d\x00e\tf\ng") == "abcde\tf\ng"


def test_an_out_that_is_a_file_exits_2_before_any_adapter_is_called(tmp_path, capsys):
    target = tmp_path / "agreement.md"
    target.write_text("mine")
    CALLS.clear()
    assert main(["report", "--adapter", f"{__name__}:Hostile", "--out", str(target)]) == 2
    assert f"--out {target}: is a file, not a directory" in capsys.readouterr().err
    assert CALLS == [] and target.read_text() == "mine"


def test_every_number_in_the_summary_was_judged(tmp_path):
    document = generate(tmp_path / "out", [f"{__name__}:WrongLoss"], ["float64"], seed=0, examples=4)
    (summary,) = document["summary"]
    quantities = summary["quantities"]
    assert quantities["loss"]["counts"]["fail"] > 0 and quantities["loss"]["worst_ratio"] > 1
    for name in ("gradient", "update"):  # judged and passed: their worst ratio is at most 1
        assert quantities[name]["counts"]["fail"] == 0 and quantities[name]["worst_ratio"] <= 1
    for record in document["records"]:
        if record["verdict"] == "pass":
            assert record["worst_ratio"] is None or record["worst_ratio"] <= 1, record
    markdown = (tmp_path / "out" / "agreement.md").read_text()
    counts = r" \| \d+" * 4  # outside model, error, not applicable, known divergence
    rows = re.findall(rf"^\| wrong-loss float64 \| float64 \| (\w+) \| (\d+) \| (\d+){counts} \| (\S+) \|",
                      markdown, flags=re.MULTILINE)
    assert rows and all(fails != "0" or float(worst) <= 1 for _, _, fails, worst in rows if worst != "-")
    assert np.isfinite(quantities["gradient"]["worst_ratio"])
