"""tools/param_counts.py, its command line only (tests/model/test_configs.py checks every
Table 3 count against the paper): a built model's count equals the analytic one, and a
Table 3 file is set beside the paper's count (`dctformer_tf.plan.PAPER_PARAMETERS`)."""

from dctformer_tf.plan import PAPER_PARAMETERS
from tests.tools import TOOLS, load_tool

param_counts = load_tool("param_counts")
GIN_MODELS = TOOLS.parent / "gin" / "models"


def test_built_and_analytic_counts_and_the_papers(capsys):
    param_counts.main([str(GIN_MODELS / "tiny.gin")])
    param_counts.main([str(GIN_MODELS / "lsun.gin"), "--no-build"])
    header, tiny, _, lsun = capsys.readouterr().out.splitlines()
    assert header.split() == ["config", "built", "analytic", "paper", "ratio"]
    name, built, analytic, paper, ratio = tiny.split()
    assert name == "tiny" and built == analytic and paper == ratio == "-"
    name, built, analytic, paper, ratio = lsun.split()
    assert (name, built, paper) == ("lsun", "-", f"{PAPER_PARAMETERS['lsun'] / 1e6:.0f}M")
    assert float(ratio) == round(int(analytic.replace(",", "")) / PAPER_PARAMETERS["lsun"], 3)
