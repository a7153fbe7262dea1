"""Memory plan of the Table 3 training runs: per-replica bytes, whether they fit, and how.

    python tools/plan_run.py                              # every Table 3 config on tpu-v3-32
    python tools/plan_run.py --accelerator 8xa100-80gb --config lsun imagenet
    python tools/plan_run.py --replicas 64 --memory-gib 16   # any data-parallel machine
    python tools/plan_run.py --json                       # every config, machine-readable
    python tools/plan_run.py --smallest                   # smallest listed accelerator per config
    python tools/plan_run.py --validate                   # activation model vs measured CPU memory

For each config at its paper batch (`BATCH_SIZE`, split over the replicas; docs/design.md §4)
and window (`CHUNK_SIZE + CHUNK_OVERLAP`), the bytes one replica holds: parameters, Adam's two
moments, gradients and activations, for the four settings float32 / bfloat16 x remat off / on.
"bfloat16" is mixed precision with float32 master weights and optimizer state, and a float32
residual stream, layer norms, softmax and logits; matmuls and their saved inputs in bfloat16.
"remat" recomputes every residual block (`ReZeroResidual`) in the backward pass.

The total is a sum (parameters + optimizer + gradients + activations, plus the bfloat16 copies
of the weights and, when gradients are accumulated, the accumulator), which is conservative:
XLA can place weight gradients in memory that activations have already released. A plan
fits when the total is at most `(1 - headroom)` of a replica's memory; the headroom (10 % by
default) is left to the runtime, XLA's fragmentation, collectives and the infeed.

`--validate` builds small configs on the CPU and runs one train step of
`DCTransformerTrainer` per config, XLA-compiled and in graph mode, each in its own process; it
compares the step's peak memory (TensorFlow's CPU allocator statistics,
`get_memory_info('CPU:0')`, above the memory in use once the model, optimizer and batch exist)
with this model's float32 prediction (docs/benchmarks.md, "Memory plan").
"""

import argparse
import dataclasses
import json
import math
import os
import pathlib
import subprocess
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parents[1]

GIN_MODELS = ROOT / "gin" / "models"
GIN_DATA = ROOT / "gin" / "data"
TRAIN_GIN = ROOT / "gin" / "runs" / "train.gin"
TABLE3 = ["lsun", "ffhq", "imagenet", "openimages", "plant_leaves", "retinopathy", "clevr"]
GIB = 2**30

F32 = 4  # float32 bytes: residual stream, layer norms, softmax, logits, master weights, Adam
INT32 = 4  # the input batch
PRECISIONS = {"float32": 4, "bfloat16": 2}  # bytes of matmul operands and their saved copies
SETTINGS = [(p, remat) for p in PRECISIONS for remat in (False, True)]
# TF's exact GELU is 0.5 * x * erfc(-x / sqrt(2)); its gradient reads x, 0.5 * x and erfc(.),
# and the second dense layer's gradient reads the GELU output: four [B, T, 4D] copies. XLA
# keeps all four (seen in XLA:CPU's buffer assignment; its rematerialisation pass, which could
# recompute them, only runs when a program exceeds device memory).
GELU_COPIES = 4


@dataclasses.dataclass(frozen=True)
class Accelerator:
    """A data-parallel machine: `replicas` model copies, each with `memory_gib` of memory."""

    name: str
    replicas: int
    memory_gib: float
    note: str = ""

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_gib * GIB)


# One replica per TPU v3 core, per TPU v4 chip (its two TensorCores run as one megacore
# device, so "v4-32" = 32 TensorCores = 16 replicas of 32 GiB), per GPU.
ACCELERATORS = {
    "tpu-v3-32": Accelerator("tpu-v3-32", 32, 16, "32 cores x 16 GiB HBM (2 cores per chip)"),
    "tpu-v4-32": Accelerator("tpu-v4-32", 16, 32, "16 chips x 32 GiB HBM, one replica per chip"),
    "8xa100-80gb": Accelerator("8xa100-80gb", 8, 80, "8 GPUs x 80 GiB"),
    "8xh100-80gb": Accelerator("8xh100-80gb", 8, 80, "8 GPUs x 80 GiB"),
}


@dataclasses.dataclass(frozen=True)
class Model:
    """The sizes the plan reads off a `ModelConfig` (letters of docs/design.md)."""

    name: str
    d: int  # model width D
    heads: int  # attention heads H
    key_size: int  # K; every head projects to K, so H*K need not equal D
    window: int  # decoder window T = chunk + overlap
    tokens: int  # encoder tokens N
    grid: int  # G
    padded_grid: int  # G plus the encoder conv's zero padding
    channels: int  # C (EOS excluded)
    positions: int  # P
    values: int  # V
    encoder_spec: tuple
    decoder_specs: tuple  # channel, position, value decoders
    dropout: float
    parameters: int  # count_parameters (analytic)
    paper_batch: int | None = None
    # The run's sequence buffer (gin/data/NAME.gin): the step is fed compact examples of this
    # length and expands them itself (docs/design.md §2.4). None: fed dense examples.
    max_length: int | None = None
    bytes_per_element: int = 4  # of a packed sequence (`data.compact.SequenceLayout`)
    grid_bias: bool = False  # `attention_bias="grid_2d"` (model/grid_attention_bias.py)

    @property
    def hk(self) -> int:
        return self.heads * self.key_size


def model_from_config(name: str, config, paper_batch: int | None = None,
                      max_length: int | None = None) -> Model:
    """`Model` of a `dctformer_tf.model.configs.ModelConfig`."""
    from dctformer_tf.data.layout import SequenceLayout
    from dctformer_tf.model.configs import count_parameters
    from dctformer_tf.model.par_stack import normalize_layer_spec
    from dctformer_tf.model.partial_image_encoder import encoder_grid_size, encoder_padding

    kwargs = config.model_kwargs()
    g = config.grid_size
    specs = [tuple(normalize_layer_spec(kwargs[f"{x}_spec"])) for x in ("channel", "position",
                                                                        "value")]
    return Model(
        name=name, d=config.d_model, heads=config.num_heads, key_size=config.key_size,
        window=config.window, tokens=encoder_grid_size(g, config.conv_stride) ** 2, grid=g,
        padded_grid=g + sum(encoder_padding(g, config.conv_kernel, config.conv_stride)),
        channels=3 * config.block_size**2, positions=g**2, values=2 * config.clip + 1,
        encoder_spec=tuple(normalize_layer_spec(config.encoder_spec)),
        decoder_specs=tuple(specs), dropout=config.dropout,
        parameters=count_parameters(kwargs), paper_batch=paper_batch, max_length=max_length,
        bytes_per_element=SequenceLayout(config.block_size, g, config.clip).bytes_per_element,
        grid_bias=config.attention_bias == "grid_2d",
    )


def load_table3(names: list[str], bindings: tuple = ()) -> list[Model]:
    """The `Model` of each gin/models/NAME.gin with gin/data/NAME.gin, gin/runs/train.gin
    and `bindings` (gin lines), its paper batch and its sequence buffer."""
    from dctformer_tf.train.gin_model import config_from_bindings, read_bindings

    models = []
    for name in names:
        path = GIN_MODELS / f"{name}.gin"
        if not path.exists():
            raise SystemExit(f"plan_run: no model file {path} (Table 3 configs: "
                             f"{', '.join(TABLE3)})")
        # Read, not registered: the plan needs no TensorFlow (tools/accelerator_check.sh
        # runs it on a GPU host that has none).
        bound = read_bindings([path, data_file(name), TRAIN_GIN], bindings)
        models.append(model_from_config(name, config_from_bindings(bound),
                                        bound["train.batch_size"],
                                        bound["build_sequences.max_length"]))
    return models


def parse_run_files(name: str, bindings: tuple = ()) -> None:
    """Parses gin/models/NAME.gin, its data file (`data_file`), gin/runs/train.gin and
    `bindings` (nothing is written: train.model_dir is a placeholder)."""
    import gin

    path = GIN_MODELS / f"{name}.gin"
    if not path.exists():
        raise SystemExit(f"plan_run: no model file {path} (Table 3 configs: "
                         f"{', '.join(TABLE3)})")
    gin.clear_config()
    gin.parse_config_files_and_bindings([str(path), str(data_file(name)), str(TRAIN_GIN)],
                                        ["train.model_dir = 'unused'", *bindings])


def data_file(name: str) -> pathlib.Path:
    """gin/data/NAME.gin, or gin/data/shapes.gin for the CPU models (tiny, small), which
    have no data file of their own."""
    path = GIN_DATA / f"{name}.gin"
    return path if path.exists() else GIN_DATA / "shapes.gin"


# ----------------------------------------------------------------------------------------
# The activation model: bytes per sample of one train step (forward, backward, update).
# A residual `H + alpha * dropout(f(LayerNorm(H)))` keeps what its backward pass reads;
# "tokens" is the sequence it runs over (T for a decoder, N for the encoder) and `a` is the
# byte width of matmul operands (4 in float32, 2 in bfloat16).


def residual_kept(m: Model, tokens: int, a: int) -> dict:
    """What every residual keeps, whatever its branch `f` (bytes per sample)."""
    return {
        "residual stream": F32 * m.d * tokens,  # its input H, read by the layer norm's gradient
        "layer norms": a * m.d * tokens,  # LayerNorm(H), the branch's matmul input
        # f's output, which alpha's gradient reads, and the dropout keep-mask
        "branch outputs": a * m.d * tokens * (2 if m.dropout else 1),
    }


def score_bytes(a: int) -> int:
    """Bytes per attention weight kept: the float32 softmax, plus its cast to `a` bytes for
    the weighted sum of values (the cast is the same tensor in float32)."""
    return F32 + (a if a != F32 else 0)


def branch_kept(kind: str, m: Model, tokens: int, a: int) -> dict:
    """What the branch `f` of a residual keeps (bytes per sample).

    kind: "self" (self-attention over `tokens`), "cross" (cross-attention of the T decoder
    tokens to the N encoder tokens) or "dense" (feed-forward D -> 4D -> D)."""
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
    return {"feed-forward hidden": GELU_COPIES * 4 * m.d * a * tokens}  # see GELU_COPIES


def branch_backward(kind: str, m: Model, tokens: int, a: int) -> int:
    """Extra bytes per sample while a branch's gradient is computed: the largest pair of
    gradient tensors alive together."""
    if kind == "dense":
        return 2 * 4 * m.d * a * tokens  # d(GELU output), d(pre-activation) [B, T, 4D]
    context = tokens if kind == "self" else m.tokens
    # d(attention weights) in `a` bytes, d(scores) in float32: [B, H, T, S] each
    return (a + F32) * m.heads * tokens * context + 3 * m.hk * a * tokens


def residuals(spec, cross: bool) -> list[str]:
    """Branch kinds of a PAR stack's residuals, in order (`PARStack`)."""
    kinds = []
    for n_attention, n_dense in spec:
        kinds += (["self", "cross"] if cross else ["self"]) * n_attention + ["dense"] * n_dense
    return kinds


def stacks(m: Model) -> list[tuple[str, int]]:
    """(branch kind, tokens) of every residual of the model: encoder, then three decoders."""
    layers = [(kind, m.tokens) for kind in residuals(m.encoder_spec, cross=False)]
    for spec in m.decoder_specs:
        layers += [(kind, m.window) for kind in residuals(spec, cross=True)]
    return layers


def outside_residuals(m: Model, a: int) -> dict:
    """What lies outside the residuals (bytes per sample)."""
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


def grid_bias_bytes(m: Model, remat: bool) -> int:
    """`attention_bias="grid_2d"` (bytes per sample): the int32 [T, T] offset index, kept
    for the gradient of the table gather, and the float32 [H, T, T] gradient of the bias,
    which every self-attention layer of the value decoder adds to during its backward pass
    (float32 in both precisions). The bias itself only adds to the scores, so without remat
    nothing reads it after the forward pass; with remat it is an input of each residual
    and is kept for the recomputation: a second [H, T, T]."""
    t = m.window
    return INT32 * t * t + (2 if remat else 1) * F32 * m.heads * t * t


def logits_bytes(m: Model) -> int:
    """The three heads: float32 logits and the softmax-minus-one-hot that
    `sparse_softmax_cross_entropy_with_logits` keeps for its gradient, [T, X] each, for
    X = C + 1 channels, P positions, V values."""
    return 2 * F32 * m.window * (m.channels + 1 + m.positions + m.values)


def activation_terms(m: Model, batch: int, precision: str, remat: bool) -> dict:
    """Activation bytes of one replica's train step at `batch`, by term; "total" is the peak.

    Without remat every residual keeps its tensors until its backward pass; with remat only
    its input (the residual stream) is kept and the rest is recomputed, one residual at a
    time. The backward pass starts from the heads' logits, which it frees before the first
    residual's gradient, so the peak is the kept tensors plus the larger of the logits and
    one residual's backward working set (its recomputed tensors too, with remat)."""
    a = PRECISIONS[precision]
    terms = dict.fromkeys(["residual stream", "layer norms", "branch outputs",
                           "attention q/k/v/out", "attention scores", "feed-forward hidden"], 0)
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
    peak_extra = batch * max(logits_bytes(m), one_residual)
    terms["logits or one residual's backward"] = peak_extra
    terms["total"] = sum(terms.values())
    return terms


def residual_parameters(kind: str, m: Model) -> int:
    """Weights of one residual (its float32 layer norm and alpha included)."""
    norm = 2 * m.d + 1
    if kind == "dense":
        return 2 * 4 * m.d * m.d + 4 * m.d + m.d + norm  # D -> 4D -> D
    return 4 * m.d * m.hk + 3 * m.hk + m.d + norm  # q, k, v, output projections


def weight_copies(m: Model, precision: str, remat: bool) -> int:
    """bfloat16 copies of the float32 weights: Keras casts a variable where a bfloat16 layer
    reads it, and the copy lives until the gradient that reads it. The logits layers are
    float32 (no copy); with remat a residual's copies are recomputed with it."""
    if PRECISIONS[precision] == F32:
        return 0
    heads = sum(m.d * x + x + 2 * m.d for x in (m.channels + 1, m.positions, m.values))
    in_residuals = [residual_parameters(kind, m) for kind, _ in stacks(m)]
    kept = m.parameters - heads - sum(in_residuals)  # embeddings, encoder conv
    kept += max(in_residuals) if remat else sum(in_residuals)
    return 2 * kept


# ----------------------------------------------------------------------------------------
# The plan: per-replica bytes, the largest batch that fits, accumulation.


def replica_bytes(m: Model, batch: int, precision: str, remat: bool,
                  accumulation: int = 1) -> dict:
    """Per-replica bytes of a train step at per-replica `batch`."""
    p = m.parameters
    return {
        "parameters": F32 * p,  # float32 master weights in both precisions
        "optimizer": 2 * F32 * p,  # Adam's first and second moments
        "gradients": F32 * p,  # float32, the gradients of the float32 variables
        "accumulated gradients": F32 * p if accumulation > 1 else 0,
        "bfloat16 weight copies": weight_copies(m, precision, remat),
        "activations": activation_terms(m, batch, precision, remat)["total"],
    }


def total(parts: dict) -> int:
    return sum(parts.values())


def predictions(models: list[Model], batch: int) -> dict:
    """{config: {"parameters": n, "<precision>[+remat]": bytes}} at per-replica `batch`."""
    return {m.name: {"parameters": m.parameters, **{
        f"{precision}{'+remat' if remat else ''}": total(replica_bytes(m, batch, precision, remat))
        for precision, remat in SETTINGS}} for m in models}


def largest_batch(m: Model, precision: str, remat: bool, budget: int,
                  accumulation: int = 1) -> int:
    """Largest per-replica batch whose step fits in `budget` bytes (0 if none)."""

    def fits(b):
        return total(replica_bytes(m, b, precision, remat, accumulation)) <= budget

    if not fits(1):
        return 0
    low, high = 1, 2
    while fits(high):
        low, high = high, high * 2
    while high - low > 1:  # fits(low), not fits(high)
        mid = (low + high) // 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    return low


def accumulation_steps(per_replica: int, largest: int) -> tuple[int, int] | None:
    """(steps, micro-batch): the fewest gradient-accumulation steps whose equal micro-batches
    make up `per_replica` exactly and fit in `largest`; None if not even 1 fits."""
    if largest < 1:
        return None
    # steps = per_replica (micro-batches of 1) always divides: the search ends there at most
    steps = next(s for s in range(math.ceil(per_replica / largest), per_replica + 1)
                 if per_replica % s == 0)
    return steps, per_replica // steps


def per_replica_batch(m: Model, accelerator: Accelerator) -> int:
    """The paper batch split over the replicas (rounded up when they do not divide it)."""
    return math.ceil(m.paper_batch / accelerator.replicas)


def plan_setting(m: Model, accelerator: Accelerator, precision: str, remat: bool,
                 headroom: float) -> dict:
    """One setting of one config on one accelerator: bytes, fit, largest batch, accumulation."""
    budget = int(accelerator.memory_bytes * (1 - headroom))
    batch = per_replica_batch(m, accelerator)
    parts = replica_bytes(m, batch, precision, remat)
    largest = largest_batch(m, precision, remat, budget)
    steps, micro = 1, batch
    if largest < batch:  # shrink the per-replica batch and accumulate its gradients
        accumulated = accumulation_steps(batch, largest_batch(m, precision, remat, budget, 2))
        steps, micro = accumulated or (None, None)
    return {
        "precision": precision,
        "remat": remat,
        "per_replica_batch": batch,
        "bytes": {**parts, "total": total(parts)},
        "activation_terms": activation_terms(m, batch, precision, remat),
        "fits": total(parts) <= budget,
        "largest_batch_per_replica": largest,
        "accumulation_steps": steps,
        "micro_batch": micro,
        "bytes_at_micro_batch": None if micro is None else total(
            replica_bytes(m, micro, precision, remat, steps)),
    }


def plan_config(m: Model, accelerator: Accelerator, headroom: float) -> dict:
    """Every setting of one config on one accelerator."""
    return {
        "parameters": m.parameters,
        "paper_batch": m.paper_batch,
        "window": m.window,
        "global_batch": per_replica_batch(m, accelerator) * accelerator.replicas,
        "settings": [plan_setting(m, accelerator, p, r, headroom) for p, r in SETTINGS],
    }


# Least change first: float32 without remat, then bfloat16 (faster too), then remat.
PREFERENCE = [("float32", False), ("bfloat16", False), ("bfloat16", True), ("float32", True)]


def best_setting(plan: dict) -> dict | None:
    """The setting with the fewest accumulation steps, the least change among equals."""
    usable = [s for s in plan["settings"] if s["accumulation_steps"] is not None]
    if not usable:
        return None
    return min(usable, key=lambda s: (s["accumulation_steps"],
                                      PREFERENCE.index((s["precision"], s["remat"]))))


def smallest(m: Model, headroom: float) -> dict:
    """For one config: the best setting on each listed accelerator, the smallest listed
    accelerator (by total memory, then list order) on which the paper batch fits at all, and
    the smallest on which it fits without gradient accumulation."""
    order = sorted(ACCELERATORS.values(), key=lambda x: x.replicas * x.memory_gib)
    best = {acc.name: best_setting(plan_config(m, acc, headroom)) for acc in order}
    fits = [name for name, s in best.items() if s is not None]
    whole = [name for name, s in best.items() if s is not None and s["accumulation_steps"] == 1]
    return {"best": best, "smallest": fits[0] if fits else None,
            "smallest_without_accumulation": whole[0] if whole else None}


# ----------------------------------------------------------------------------------------
# Printing.


def gib(value: float) -> str:
    return f"{value / GIB:.2f}"


def setting_name(s: dict) -> str:
    name = "f32" if s["precision"] == "float32" else "bf16"
    return name + ("+remat" if s["remat"] else "")


def accumulation_text(s: dict) -> str:
    if s["accumulation_steps"] is None:
        return "does not fit at batch 1"
    if s["accumulation_steps"] == 1:
        return "-"
    return f"{s['accumulation_steps']} steps of {s['micro_batch']} ({gib(s['bytes_at_micro_batch'])})"


def print_plans(models: list[Model], accelerator: Accelerator, headroom: float) -> None:
    budget = accelerator.memory_bytes * (1 - headroom)
    print(f"{accelerator.name}: {accelerator.replicas} replicas x {accelerator.memory_gib:g} GiB"
          f"{' (' + accelerator.note + ')' if accelerator.note else ''}; a plan fits in "
          f"{gib(budget)} GiB per replica (headroom {headroom:.0%}). GiB per replica:")
    for m in models:
        plan = plan_config(m, accelerator, headroom)
        print(f"\n{m.name}: {m.parameters:,} parameters, paper batch {m.paper_batch} = "
              f"{plan['settings'][0]['per_replica_batch']} per replica, window {m.window}")
        print(f"  {'setting':<11}{'params':>7}{'Adam':>7}{'grads':>7}{'casts':>7}{'activ.':>8}"
              f"{'total':>8}{'fits':>6}{'max batch':>11}  accumulation (GiB)")
        for s in plan["settings"]:
            b = s["bytes"]
            print(f"  {setting_name(s):<11}{gib(b['parameters']):>7}{gib(b['optimizer']):>7}"
                  f"{gib(b['gradients']):>7}{gib(b['bfloat16 weight copies']):>7}"
                  f"{gib(b['activations']):>8}{gib(b['total']):>8}"
                  f"{'yes' if s['fits'] else 'no':>6}{s['largest_batch_per_replica']:>11}  "
                  f"{accumulation_text(s)}")


def cell(s: dict | None) -> str:
    if s is None:
        return "does not fit"
    steps = "" if s["accumulation_steps"] == 1 else f" x{s['accumulation_steps']}"
    return f"{setting_name(s)} {s['micro_batch']}{steps} ({gib(s['bytes_at_micro_batch'])})"


def print_smallest(models: list[Model], headroom: float) -> None:
    order = sorted(ACCELERATORS.values(), key=lambda x: x.replicas * x.memory_gib)
    print(f"Best setting per accelerator: setting, per-replica micro-batch, xN accumulation "
          f"steps, (GiB per replica); headroom {headroom:.0%}")
    print(f"{'config':<13}{'batch':>6}  " + "".join(f"{a.name:<30}" for a in order)
          + "smallest / without accumulation")
    for m in models:
        result = smallest(m, headroom)
        cells = "".join(f"{cell(result['best'][a.name]):<30}" for a in order)
        print(f"{m.name:<13}{m.paper_batch:>6}  {cells}{result['smallest']} / "
              f"{result['smallest_without_accumulation']}")


def plans_json(models: list[Model], accelerator: Accelerator, headroom: float) -> dict:
    return {
        "accelerator": dataclasses.asdict(accelerator),
        "headroom": headroom,
        "budget_bytes_per_replica": int(accelerator.memory_bytes * (1 - headroom)),
        "configs": {m.name: {**plan_config(m, accelerator, headroom),
                             "smallest": smallest(m, headroom)} for m in models},
    }


# ----------------------------------------------------------------------------------------
# The input side (docs/design.md §2.4): what the hosts send and how much encoding feeds a step.

# CPU milliseconds the tf.data encoder (`data/pipeline.py`, with the fused kernel) spends per
# megapixel of canvas: the most `--measure-encode` gave at any Table 3 geometry on the
# project's 2-core CPU machine (15.6 at 2048², S = 32, where the DCT costs twice S = 16's per
# pixel; 14.8 at 384², where the pipeline's per-image work is a larger share; 8-11 elsewhere),
# so a conservative default (docs/benchmarks.md, "Input pipeline"). Hosts without the kernel
# run the TensorFlow-ops encoder at up to 34 ms/MP. `--measure-encode` measures every config's
# own geometry on the host at hand instead.
ENCODE_CPU_MS_PER_MEGAPIXEL = 16.0


def example_bytes(run) -> dict:
    """Bytes of one dense example (`make_training_example`, what the pipeline used to send)
    and one compact example (`chunk_dataset`, what it sends), at the run's full sizes, read
    from the datasets' element specs: nothing is encoded."""
    from dctformer_tf.data import chunking, compact

    sequences = empty_sequences(run)
    chunk, overlap = run.chunking.chunk_size, run.chunking.overlap
    dense = sequences.map(
        lambda ex: chunking.make_training_example(ex, run.codec, chunk, overlap, 0)).batch(1)
    before, after = (compact.example_bytes(d.element_spec)
                     for d in (dense, compact_batches(run, sequences)))
    return {"dense_bytes": before, "compact_bytes": after, "ratio": after / before}


def empty_sequences(run):
    """A one-element dataset of the run's encoded-sequence shape (EOS only, `max_length`
    long): what the input pipeline's element specs are read from, nothing encoded."""
    import numpy as np
    import tensorflow as tf

    empty = np.zeros((run.max_length, 3), np.int32)
    empty[0] = (run.codec.eos, 0, 0)
    return tf.data.Dataset.from_tensors({
        "triples": empty, "length": np.int32(1), "content_hw": np.zeros(2, np.int32),
        "label": np.int32(0)})


def compact_batches(run, sequences, batch_size: int = 1):
    """`chunk_dataset` batches of `sequences` on the run's codec and chunking."""
    from dctformer_tf.data.chunking import chunk_dataset

    return chunk_dataset(sequences, run.codec, run.chunking.chunk_size, run.chunking.overlap,
                         batch_size, seed=0)


def run_input_settings(name: str, bindings: tuple = ()) -> tuple:
    """(RunSettings, l_max, examples_per_encode, assumptions, paper batch) of NAME, where
    assumptions are the data file's assumed length distribution: {"mean_length",
    "overlong_fraction", "mean_kept_length"} (None without an ASSUMED_MEAN_LENGTH)."""
    import gin

    from dctformer_tf.train.experiment import build_run_settings

    parse_run_files(name, bindings)
    run, _ = build_run_settings()
    values = {}
    for key, binding, default in [("l_max", "build_chunks.l_max", None),
                                  ("r", "build_chunks.examples_per_encode", 1),
                                  ("mean_length", "%ASSUMED_MEAN_LENGTH", None),
                                  ("overlong", "%ASSUMED_OVERLONG_FRACTION", 0.0),
                                  ("mean_kept", "%ASSUMED_MEAN_KEPT_LENGTH", None),
                                  ("batch", "%BATCH_SIZE", None)]:
        try:
            values[key] = gin.query_parameter(binding)
        except ValueError:
            values[key] = default
    gin.clear_config()
    assumed = None
    if values["mean_length"] is not None:
        assumed = {"mean_length": values["mean_length"],
                   "overlong_fraction": values["overlong"],
                   "mean_kept_length": values["mean_kept"] or values["mean_length"]}
    return run, values["l_max"], values["r"], assumed, values["batch"]


def measure_encode_seconds(run, num: int = 16, repeats: int = 8, encoder: str = "auto") -> float:
    """CPU seconds per image of the tf.data encoder at the run's geometry, on `num` photo
    canvases (`tests/photos.py`, scikit-image's photos) passed `repeats` times, after a
    warm-up pass. The repeats matter: a pass of 16 images is mostly the iterator's start-up
    (threads, first batch), which a training pipeline pays once (at 384², 6.0 ms per image
    over 16 images, 2.2 ms over 128)."""
    import time

    import numpy as np
    import tensorflow as tf

    from dctformer_tf.data.photos import photo_canvases
    from dctformer_tf.data.pipeline import encode_dataset

    images = photo_canvases(run.codec.resolution, num, seed=1)
    source = tf.data.Dataset.from_tensor_slices({"image": images,
                                                 "label": np.zeros(num, np.int32)})
    sequences = encode_dataset(source.repeat(repeats), run.codec, run.max_length,
                               on_overflow="skip", encoder=encoder)
    for _ in sequences:  # traces and compiles the encoder
        pass
    cpu = time.process_time()
    for _ in sequences:
        pass
    return (time.process_time() - cpu) / (num * repeats)


def input_plan(name: str, steps_per_second: float, encode_ms_per_megapixel: float,
               measure: bool = False, bindings: tuple = (), encoder: str = "auto") -> dict:
    """The input side of config NAME: bytes per example, encodes per example (the paper's
    one per encode, and this run's `examples_per_encode`), CPU cost per example and the host
    cores that feed `steps_per_second` steps of the paper batch. None when its data file
    assumes no length distribution (the CPU models)."""
    from dctformer_tf.dct import fused_op

    run, l_max, r, assumed, batch = run_input_settings(name, bindings)
    if assumed is None:
        return None
    # Over-long images are encoded, then skipped; of the rest, E[min(1, L / l_max)] is
    # E[L | kept] / l_max when every kept L <= l_max (max_length = l_max in the data files).
    kept_q = min(1.0, assumed["mean_kept_length"] / l_max) if l_max else 1.0
    keep = (1.0 - assumed["overlong_fraction"]) * kept_q
    megapixels = run.codec.resolution**2 / 1e6
    encode_s = (measure_encode_seconds(run, encoder=encoder) if measure
                else encode_ms_per_megapixel * megapixels / 1e3)
    plan = {"resolution": run.codec.resolution, "max_length": run.max_length, "l_max": l_max,
            "assumed_mean_length": assumed["mean_length"],
            "assumed_overlong_fraction": assumed["overlong_fraction"],
            "assumed_mean_kept_length": assumed["mean_kept_length"],
            "mean_keep_probability": keep,
            "examples_per_encode": r, "encode_cpu_s": encode_s,
            "encode_cost": (f"measured ({fused_op.resolve(encoder)} encoder)" if measure
                            else f"{encode_ms_per_megapixel:g} ms/MP"),
            "paper_batch": batch, "steps_per_second": steps_per_second,
            **example_bytes(run)}
    for key, per_encode in (("paper", 1), ("this_run", r)):
        encodes = 1.0 / (per_encode * keep)
        plan[f"{key}_encodes_per_example"] = encodes
        plan[f"{key}_cpu_s_per_example"] = encodes * encode_s
        plan[f"{key}_host_cores"] = steps_per_second * batch * encodes * encode_s
    return plan


def print_input_plans(plans: dict) -> None:
    first = next(iter(plans.values()))
    print()
    print(f"Input side at {first['steps_per_second']:g} steps/s of the paper batch; encoding "
          f"cost {first['encode_cost']}. Paper: one example per encode; this run: "
          "build_chunks.examples_per_encode (r).")
    print(f"{'config':<13}{'dense B/ex':>12}{'compact B/ex':>13}{'ratio':>7}{'mean L':>8}"
          f"{'keep':>6}{'r':>3}{'enc/ex':>14}{'CPU ms/ex':>14}{'host cores':>16}")
    for name, p in plans.items():
        print(f"{name:<13}{p['dense_bytes']:>12,}{p['compact_bytes']:>13,}{p['ratio']:>7.3f}"
              f"{p['assumed_mean_length']:>8}{p['mean_keep_probability']:>6.2f}"
              f"{p['examples_per_encode']:>3}"
              f"{p['paper_encodes_per_example']:>7.2f}{p['this_run_encodes_per_example']:>7.2f}"
              f"{1e3 * p['paper_cpu_s_per_example']:>7.1f}"
              f"{1e3 * p['this_run_cpu_s_per_example']:>7.1f}"
              f"{p['paper_host_cores']:>8.1f}{p['this_run_host_cores']:>8.1f}")
    print("(enc/ex, CPU ms/ex, host cores: paper, then this run; encoding only, without "
          "reading and decoding the source images)")


# ----------------------------------------------------------------------------------------
# Validation against the CPU: small configs, one XLA train step each, in its own process.

_SMALL = dict(block_size=8, clip=1200, num_heads=2, conv_kernel=4, conv_stride=2,
              encoder_spec=[(1, 2)], channel_spec=[(1, 2)], position_spec=[(1, 2)],
              value_spec=[(1, 2)])
# (ModelConfig fields, batch): a window of 1024 (attention scores dominate); a deeper,
# Table-3-shaped stack with dropout (feed-forward and residual terms dominate); 32x32 blocks
# with a clip of 4000 (C = 3072 channels, V = 8001 values: partial image and logits).
VALIDATION = {
    "window-1024": ({**_SMALL, "resolution": 64, "d_model": 128, "chunk_size": 896,
                     "chunk_overlap": 128}, 4),
    # the same with the value decoder's grid attention bias (`attention_bias="grid_2d"`)
    "window-1024-grid": ({**_SMALL, "resolution": 64, "d_model": 128, "chunk_size": 896,
                          "chunk_overlap": 128, "attention_bias": "grid_2d"}, 4),
    "deep-dropout": ({**_SMALL, "resolution": 128, "d_model": 192, "num_heads": 3,
                      "encoder_spec": [(1, 2), (1, 4)], "channel_spec": [(1, 2), (1, 4)],
                      "position_spec": [(1, 2), (1, 4)],
                      "value_spec": [(1, 2), (1, 2), (1, 7)], "chunk_size": 256,
                      "chunk_overlap": 64, "dropout": 0.1}, 8),
    "block-32": ({**_SMALL, "resolution": 512, "block_size": 32, "clip": 4000, "d_model": 96,
                  "chunk_size": 192, "chunk_overlap": 64}, 8),
}


def random_batch(config, batch: int) -> dict:
    """A train batch of the right shapes and valid ids (random values)."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    g, t, c = config.grid_size, config.window, 3 * config.block_size**2
    targets = np.stack([np.sort(rng.integers(0, c + 1, (batch, t)), axis=1),
                        rng.integers(0, g * g, (batch, t)),
                        rng.integers(0, 2 * config.clip + 1, (batch, t))], -1)
    mask = np.ones((batch, t), "float32")
    mask[:, :config.chunk_overlap] = 0.0  # the overlap carries no loss
    data = {"partial_image": rng.integers(-5, 6, (batch, g, g, c)), "inputs": targets,
            "targets": targets, "loss_mask": mask}
    return {k: tf.constant(v, tf.float32 if k == "loss_mask" else tf.int32)
            for k, v in data.items()}


def measure_step(config_kwargs: dict, batch: int, jit_compile: bool) -> dict:
    """Peak bytes the allocator hands out during one train step of `DCTransformerTrainer`,
    above what is in use before it (model, optimizer, batch, TF); the step is traced,
    compiled and run once before."""
    import keras
    import tensorflow as tf

    from dctformer_tf.model.configs import ModelConfig
    from dctformer_tf.train.trainer import DCTransformerTrainer

    config = ModelConfig(**config_kwargs)
    model = DCTransformerTrainer(**config.model_kwargs())
    model.build(config.input_shapes())
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    model.optimizer.build(model.trainable_variables)
    data = random_batch(config, batch)
    step = tf.function(model.train_step, jit_compile=jit_compile)
    float(step(data)["loss"])
    tf.config.experimental.reset_memory_stats("CPU:0")
    before = tf.config.experimental.get_memory_info("CPU:0")["current"]
    float(step(data)["loss"])
    peak = tf.config.experimental.get_memory_info("CPU:0")["peak"]
    return {"baseline_bytes": before, "step_peak_bytes": peak - before}


def predicted_step(m: Model, batch: int) -> int:
    """What the plan says a float32 step adds to memory already holding the model, optimizer
    and batch: its activations (the input batch aside) and the gradients."""
    terms = activation_terms(m, batch, "float32", remat=False)
    return terms["total"] - terms["input batch"] + F32 * m.parameters


def validate() -> list[dict]:
    from dctformer_tf.model.configs import ModelConfig

    rows = []
    for name, (config_kwargs, batch) in VALIDATION.items():
        m = model_from_config(name, ModelConfig(**config_kwargs))
        row = {"config": name, "batch": batch, "parameters": m.parameters,
               "predicted_bytes": predicted_step(m, batch)}
        for mode in ("xla", "graph"):
            out = subprocess.run([sys.executable, __file__, "--child", name, mode],
                                 capture_output=True, text=True, check=True)
            measured = json.loads(out.stdout.strip().splitlines()[-1])
            row[f"{mode}_bytes"] = measured["step_peak_bytes"]
            row[f"{mode}_ratio"] = row["predicted_bytes"] / measured["step_peak_bytes"]
        rows.append(row)
    return rows


def print_validation(rows: list[dict]) -> None:
    mib = 2**20
    print("float32, no remat; peak of one train step above the memory in use before it (MiB)")
    print(f"{'config':<14}{'batch':>6}{'params':>11}{'predicted':>11}{'XLA':>9}{'pred/XLA':>10}"
          f"{'graph':>9}{'pred/graph':>11}")
    for r in rows:
        print(f"{r['config']:<14}{r['batch']:>6}{r['parameters']:>11,}"
              f"{r['predicted_bytes'] / mib:>11.1f}{r['xla_bytes'] / mib:>9.1f}"
              f"{r['xla_ratio']:>10.3f}{r['graph_bytes'] / mib:>9.1f}{r['graph_ratio']:>11.3f}")


# ----------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", nargs="+", default=TABLE3, metavar="NAME",
                        help=f"gin/models/NAME.gin files (default: {' '.join(TABLE3)})")
    parser.add_argument("--accelerator", default="tpu-v3-32", choices=list(ACCELERATORS),
                        help="a preset (default tpu-v3-32)")
    parser.add_argument("--replicas", type=int, help="replicas (cores, chips or GPUs); "
                        "with --memory-gib, instead of a preset")
    parser.add_argument("--memory-gib", type=float, help="memory per replica, GiB")
    parser.add_argument("--headroom", type=float, default=0.1,
                        help="fraction of each replica's memory left free (default 0.1)")
    parser.add_argument("--gin_bindings", action="append", metavar="BINDING",
                        help="a gin line applied after the run files, repeatable (e.g. "
                        "'build_model.attention_bias = \"grid_2d\"')")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--smallest", action="store_true",
                        help="the smallest listed accelerator and settings per config")
    parser.add_argument("--validate", action="store_true",
                        help="compare the activation model with measured CPU memory")
    parser.add_argument("--steps-per-second", type=float, default=1.0,
                        help="input side: train steps per second to feed (default 1)")
    parser.add_argument("--encode-ms-per-megapixel", type=float,
                        default=ENCODE_CPU_MS_PER_MEGAPIXEL,
                        help="input side: encoder CPU ms per canvas megapixel "
                        f"(default {ENCODE_CPU_MS_PER_MEGAPIXEL:g}, measured here)")
    parser.add_argument("--measure-encode", action="store_true",
                        help="input side: measure the encoder on this host at every config's "
                        "geometry instead")
    parser.add_argument("--encoder", choices=("auto", "fused", "ops"), default="auto",
                        help="input side: the encoder --measure-encode times (default auto: "
                        "the fused kernel where it builds)")
    parser.add_argument("--predict", type=int, metavar="BATCH",
                        help="print (JSON) each config's per-replica bytes at this batch in "
                        "the four settings, and nothing else (what accelerator_check.sh "
                        "compares with the measured peak)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.predict is not None and args.predict < 1:
        parser.error("--predict must be a positive batch")
    if (args.replicas is None) != (args.memory_gib is None):
        parser.error("--replicas and --memory-gib go together")
    if args.replicas is not None and (args.replicas < 1 or args.memory_gib <= 0):
        parser.error("--replicas must be >= 1 and --memory-gib > 0")
    if not 0 <= args.headroom < 1:
        parser.error("--headroom must be in [0, 1)")
    if args.steps_per_second <= 0 or args.encode_ms_per_megapixel <= 0:
        parser.error("--steps-per-second and --encode-ms-per-megapixel must be > 0")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        name, mode = args.child
        config_kwargs, batch = VALIDATION[name]
        print(json.dumps(measure_step(config_kwargs, batch, jit_compile=mode == "xla")))
        return
    if args.validate:
        rows = validate()
        print(json.dumps(rows, indent=1) if args.json else "", end="")
        if not args.json:
            print_validation(rows)
        return
    accelerator = ACCELERATORS[args.accelerator]
    if args.replicas is not None:
        accelerator = Accelerator(f"{args.replicas}x{args.memory_gib:g}GiB", args.replicas,
                                  args.memory_gib)
    bindings = tuple(args.gin_bindings or ())
    models = load_table3(args.config, bindings)
    if args.predict is not None:
        print(json.dumps(predictions(models, args.predict), indent=1))
        return
    if args.smallest:
        print_smallest(models, args.headroom)
        return
    inputs = {m.name: input_plan(m.name, args.steps_per_second, args.encode_ms_per_megapixel,
                                 args.measure_encode, bindings, args.encoder) for m in models}
    inputs = {name: plan for name, plan in inputs.items() if plan is not None}
    if args.json:
        plans = plans_json(models, accelerator, args.headroom)
        for name, plan in inputs.items():
            plans["configs"][name]["input"] = plan
        print(json.dumps(plans, indent=1))
        return
    print_plans(models, accelerator, args.headroom)
    if inputs:
        print_input_plans(inputs)


if __name__ == "__main__":
    main()
