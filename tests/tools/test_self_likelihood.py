"""tools/self_likelihood.py's table on hand-built NLLs: bits per element of each head, over a
sequence's own elements only (padding after its length never counts)."""

import importlib.util
import os

import numpy as np

TOOL = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "self_likelihood.py")


def _tool():
    spec = importlib.util.spec_from_file_location("self_likelihood", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bits_per_element_count_each_sequence_up_to_its_length():
    tool = _tool()
    ln2 = np.log(2)
    # Two sequences in a buffer of 70: lengths 70 and 2. Channel: 1 bit per element; position:
    # 2 bits in the first 64 elements, 4 after; value: 0. Padding holds 100 bits, never read.
    length = np.array([70, 2])
    nll = {head: np.full((2, 70), 100 * ln2) for head in ("channel", "position", "value")}
    for row, n in enumerate(length):
        nll["channel"][row, :n] = ln2
        nll["position"][row, :n] = np.where(np.arange(n) < 64, 2, 4) * ln2
        nll["value"][row, :n] = 0
    lines = tool.bits_table(nll, length)
    # All 72 elements: position (66 · 2 + 6 · 4) / 72 bits.
    assert lines[0] == (f"  all elements (mean length 36): channel 1.000 / position "
                        f"{(66 * 2 + 6 * 4) / 72:.3f} / value 0.000")
    assert lines[1] == "  elements 0-64: channel 1.000 / position 2.000 / value 0.000"
    assert lines[2] == "  elements 64-128: channel 1.000 / position 4.000 / value 0.000"
    assert len(lines) == 3  # no span past the longest sequence
