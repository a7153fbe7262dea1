"""The activation model: bytes one replica holds during a train step (forward, backward,
update), per sample, by term.

A residual `H + alpha * dropout(f(LayerNorm(H)))` (`ReZeroResidual`) keeps what its
backward pass reads. In the functions below "tokens" is the sequence a residual runs over
(T for a decoder, N for the encoder) and `a` the byte width of matmul operands and their
saved copies: 4 in float32, 2 in bfloat16. "bfloat16" is mixed precision: float32 master
weights and optimizer state, float32 residual stream, layer norms, softmax and logits;
matmuls and their saved inputs in bfloat16. "remat" recomputes every residual in the
backward pass (`ReZeroResidual(remat=True)`).
"""

from dctformer_tf.plan.sizes import ModelSizes

F32 = 4  # float32 bytes: residual stream, layer norms, softmax, logits, master weights, Adam
INT32 = 4  # the input batch
PRECISIONS = {"float32": 4, "bfloat16": 2}  # bytes of matmul operands and their saved copies
# TF's exact GELU is 0.5 * x * erfc(-x / sqrt(2)); its gradient reads x, 0.5 * x and erfc(.),
# and the second dense layer's gradient reads the GELU output: four [B, T, 4D] copies. XLA
# keeps all four (XLA:CPU's buffer assignment shows them; its rematerialisation pass, which
# could recompute them, only runs when a program exceeds device memory).
GELU_COPIES = 4
KINDS = ("self", "cross", "dense")  # the branch `f` of a residual
# The terms every residual adds to, in the order tables print them.
RESIDUAL_TERMS = ("residual stream", "layer norms", "branch outputs", "attention q/k/v/out",
                  "attention scores", "feed-forward hidden")


def residual_kept(m: ModelSizes, tokens: int, a: int) -> dict:
    """What every residual keeps, whatever its branch `f` (bytes per sample)."""
    return {
        "residual stream": F32 * m.d * tokens,  # its input H, read by the layer norm's gradient
        "layer norms": a * m.d * tokens,  # LayerNorm(H), the branch's matmul input
        # f's output, which alpha's gradient reads, and the dropout keep-mask
        "branch outputs": a * m.d * tokens * (2 if m.dropout else 1),
    }


def score_bytes(a: int) -> int:
    """Bytes per attention weight kept: the float32 softmax, plus its cast to `a` bytes for
    the weighted sum of values (in float32 the cast is the same tensor)."""
    return F32 + (a if a != F32 else 0)


def branch_kept(kind: str, m: ModelSizes, tokens: int, a: int) -> dict:
    """What the branch `f` of a residual keeps (bytes per sample).

    Args:
      kind: "self" (self-attention over `tokens`), "cross" (cross-attention of `tokens`
        decoder tokens to the N encoder tokens) or "dense" (feed-forward D -> 4D -> D).
    """
    if kind == "self":
        return {
            "attention q/k/v/out": 4 * m.hk * a * tokens,  # q, k, v, attended: [B, H, T, K]
            "attention scores": score_bytes(a) * m.heads * tokens * tokens,  # [B, H, T, T]
        }
    if kind == "cross":
        return {
            # q and attended [B, H, T, K]; k and v of the encoder output [B, H, N, K]
            "attention q/k/v/out": 2 * m.hk * a * (tokens + m.tokens),
            "attention scores": score_bytes(a) * m.heads * tokens * m.tokens,  # [B, H, T, N]
        }
    return {"feed-forward hidden": GELU_COPIES * 4 * m.d * a * tokens}


def branch_backward(kind: str, m: ModelSizes, tokens: int, a: int) -> int:
    """Extra bytes per sample while a branch's gradient is computed: the largest set of
    gradient tensors alive together."""
    if kind == "dense":
        return 2 * 4 * m.d * a * tokens  # d(GELU output), d(pre-activation) [B, T, 4D]
    context = tokens if kind == "self" else m.tokens
    # d(attention weights) in `a` bytes, d(scores) in float32: [B, H, T, S] each
    return (a + F32) * m.heads * tokens * context + 3 * m.hk * a * tokens


def residuals(spec, cross: bool) -> list[str]:
    """Branch kinds of a PAR stack's residuals, in order (`PARStack`): per block, each
    attention layer (then its cross-attention, in a decoder), then the dense layers."""
    kinds = []
    for n_attention, n_dense in spec:
        kinds += (["self", "cross"] if cross else ["self"]) * n_attention + ["dense"] * n_dense
    return kinds


def stacks(m: ModelSizes) -> list[tuple[str, int]]:
    """(branch kind, tokens) of every residual of the model: encoder, then three decoders."""
    layers = [(kind, m.tokens) for kind in residuals(m.encoder_spec, cross=False)]
    for spec in m.decoder_specs:
        layers += [(kind, m.window) for kind in residuals(spec, cross=True)]
    return layers


def outside_residuals(m: ModelSizes, a: int) -> dict:
    """What lies outside the residuals (bytes per sample): the input batch, its expansion
    into dense inputs (compact input only), the encoder's input, the output norms."""
    t, n = m.window, m.tokens
    # partial image int32 [G, G, C]; inputs and targets int32 [T, 3]; loss mask [T]
    dense_inputs = INT32 * (m.grid**2 * m.channels + 2 * 3 * t + t)
    if m.max_length:
        inputs = {
            # packed sequence uint8 [L, b], int16 channel counts [C], a few int32 scalars
            "input batch": m.max_length * m.bytes_per_element + 2 * m.channels + 10 * INT32,
            # built in the step: the unpacked triples int32 [L, 3], then the dense inputs
            "input expansion": INT32 * 3 * m.max_length + dense_inputs,
        }
    else:
        inputs = {"input batch": dense_inputs}
    return {
        **inputs,
        # the scaled, zero-padded partial image [G', G', C], read by the conv kernel's gradient
        "encoder input": a * m.padded_grid**2 * m.channels,
        # encoder: stack output and its layer norm [N, D] (the decoders' context); each
        # decoder: stack output and output layer norm [T, D], float32 (logits are float32)
        "output norms": (F32 + a) * m.d * n + 3 * 2 * F32 * m.d * t,
    }


def grid_bias_bytes(m: ModelSizes, remat: bool) -> int:
    """`attention_bias="grid_2d"` (bytes per sample): the int32 [T, T] offset index, kept
    for the gradient of the table gather, and the float32 [H, T, T] gradient of the bias,
    which every self-attention layer of the value decoder adds to during its backward pass
    (float32 in both precisions). The bias itself only adds to the scores, so without remat
    nothing reads it after the forward pass; with remat it is an input of each residual
    and is kept for the recomputation: a second [H, T, T]."""
    t = m.window
    return INT32 * t * t + (2 if remat else 1) * F32 * m.heads * t * t


def logits_bytes(m: ModelSizes) -> int:
    """The three heads (bytes per sample): float32 logits and the softmax-minus-one-hot that
    `sparse_softmax_cross_entropy_with_logits` keeps for its gradient, [T, X] each, for
    X = C + 1 channels, P positions, V values."""
    return 2 * F32 * m.window * (m.channels + 1 + m.positions + m.values)


def activation_terms(m: ModelSizes, batch: int, precision: str, remat: bool) -> dict:
    """Activation bytes of one replica's train step at per-replica `batch`, by term;
    "total" is the peak.

    Without remat every residual keeps its tensors until its backward pass; with remat only
    its input (the residual stream) is kept and the rest is recomputed, one residual at a
    time. The backward pass starts from the heads' logits, which it frees before the first
    residual's gradient, so the peak is the kept tensors plus the larger of the logits and
    one residual's backward working set (its recomputed tensors too, with remat).

    Args:
      precision: a key of `PRECISIONS`.
    Returns:
      dict term -> bytes, with "total".
    """
    a = PRECISIONS[precision]
    terms = dict.fromkeys(RESIDUAL_TERMS, 0)
    one_residual = 0
    for kind, tokens in stacks(m):
        kept = {**residual_kept(m, tokens, a), **branch_kept(kind, m, tokens, a)}
        inside = sum(v for k, v in kept.items() if k != "residual stream")
        one_residual = max(one_residual, branch_backward(kind, m, tokens, a)
                           + (inside if remat else 0))
        for name, value in kept.items():
            if name == "residual stream" or not remat:
                terms[name] += value
    terms.update(outside_residuals(m, a))
    if m.grid_bias:
        terms["grid attention bias"] = grid_bias_bytes(m, remat)
    terms = {name: value * batch for name, value in terms.items()}
    terms["logits or one residual's backward"] = batch * max(logits_bytes(m), one_residual)
    terms["total"] = sum(terms.values())
    return terms


def residual_parameters(kind: str, m: ModelSizes) -> int:
    """Weights of one residual: its branch, its layer norm and its alpha."""
    norm = 2 * m.d + 1
    if kind == "dense":
        return 2 * 4 * m.d * m.d + 4 * m.d + m.d + norm  # D -> 4D -> D
    return 4 * m.d * m.hk + 3 * m.hk + m.d + norm  # q, k, v, output projections


def head_parameters(m: ModelSizes) -> int:
    """Weights of the three heads: output layer norm and logits layer of each decoder."""
    return sum(m.d * x + x + 2 * m.d for x in (m.channels + 1, m.positions, m.values))


def weight_copies(m: ModelSizes, precision: str, remat: bool) -> int:
    """Bytes of the bfloat16 copies of the float32 weights: Keras casts a variable where a
    bfloat16 layer reads it, and the copy lives until the gradient that reads it. The
    heads are float32 (no copy); with remat a residual's copies are recomputed with it, so
    one residual's are alive at a time."""
    if PRECISIONS[precision] == F32:
        return 0
    in_residuals = [residual_parameters(kind, m) for kind, _ in stacks(m)]
    kept = m.parameters - head_parameters(m) - sum(in_residuals)  # embeddings, encoder conv
    kept += max(in_residuals) if remat else sum(in_residuals)
    return 2 * kept
