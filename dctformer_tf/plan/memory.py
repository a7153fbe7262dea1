"""The memory plan: per-replica bytes of a train step, whether it fits an accelerator, the
largest batch that does, and the gradient accumulation that makes up the rest.

A step's bytes are a sum: parameters, Adam's two moments, gradients and activations
(`activations.activation_terms`), plus the bfloat16 copies of the weights and, when
gradients are accumulated, the accumulator. The sum is conservative: XLA can place weight
gradients in memory that activations have already released. A plan fits when the sum is at
most `Accelerator.budget_bytes(headroom)`.
"""

import dataclasses
import math

from dctformer_tf.plan.accelerators import Accelerator, by_total_memory
from dctformer_tf.plan.activations import F32, PRECISIONS, activation_terms, weight_copies
from dctformer_tf.plan.sizes import ModelSizes

# (precision, remat) of the four settings every plan lists.
SETTINGS = [(p, remat) for p in PRECISIONS for remat in (False, True)]
# Least change first: float32 without remat, then bfloat16 (faster too), then remat.
PREFERENCE = [("float32", False), ("bfloat16", False), ("bfloat16", True), ("float32", True)]


def setting_key(precision: str, remat: bool) -> str:
    """"float32", "float32+remat", "bfloat16", "bfloat16+remat"."""
    return f"{precision}{'+remat' if remat else ''}"


def replica_bytes(m: ModelSizes, batch: int, precision: str, remat: bool,
                  accumulation: int = 1) -> dict:
    """Per-replica bytes of a train step at per-replica `batch`, by part.

    Args:
      accumulation: gradient accumulation steps; above 1 the accumulator is counted.
    """
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


def predictions(models: list[ModelSizes], batch: int) -> dict:
    """{config: {"parameters": n, setting_key: bytes}} at per-replica `batch`, for the four
    settings: what a measured step's peak memory is compared with."""
    return {m.name: {"parameters": m.parameters, **{
        setting_key(precision, remat): total(replica_bytes(m, batch, precision, remat))
        for precision, remat in SETTINGS}} for m in models}


def predicted_step(m: ModelSizes, batch: int) -> int:
    """What a float32 step without remat adds to memory already holding the model, optimizer
    and batch: its activations (the input batch aside) and the gradients."""
    terms = activation_terms(m, batch, "float32", remat=False)
    return terms["total"] - terms["input batch"] + F32 * m.parameters


def largest_batch(m: ModelSizes, precision: str, remat: bool, budget: int,
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


def per_replica_batch(m: ModelSizes, accelerator: Accelerator) -> int:
    """The paper batch split over the replicas (rounded up when they do not divide it)."""
    return math.ceil(m.paper_batch / accelerator.replicas)


def plan_setting(m: ModelSizes, accelerator: Accelerator, precision: str, remat: bool,
                 headroom: float) -> dict:
    """One setting of one config on one accelerator: bytes by part, whether the paper batch
    fits, the largest per-replica batch that does, and otherwise the accumulation steps and
    micro-batch that make it up (None, None when not even batch 1 fits)."""
    budget = accelerator.budget_bytes(headroom)
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


def plan_config(m: ModelSizes, accelerator: Accelerator, headroom: float) -> dict:
    """Every setting (`SETTINGS`) of one config on one accelerator."""
    return {
        "parameters": m.parameters,
        "paper_batch": m.paper_batch,
        "window": m.window,
        "global_batch": per_replica_batch(m, accelerator) * accelerator.replicas,
        "settings": [plan_setting(m, accelerator, p, r, headroom) for p, r in SETTINGS],
    }


def best_setting(plan: dict) -> dict | None:
    """The setting of `plan_config`'s result with the fewest accumulation steps, the least
    change (`PREFERENCE`) among equals; None when none fits at all."""
    usable = [s for s in plan["settings"] if s["accumulation_steps"] is not None]
    if not usable:
        return None
    return min(usable, key=lambda s: (s["accumulation_steps"],
                                      PREFERENCE.index((s["precision"], s["remat"]))))


def smallest(m: ModelSizes, headroom: float) -> dict:
    """For one config: the best setting on each listed accelerator, the smallest listed
    accelerator (`by_total_memory`) on which the paper batch fits at all, and the smallest
    on which it fits without gradient accumulation (None where there is none)."""
    best = {acc.name: best_setting(plan_config(m, acc, headroom)) for acc in by_total_memory()}
    fits = [name for name, s in best.items() if s is not None]
    whole = [name for name, s in best.items() if s is not None and s["accumulation_steps"] == 1]
    return {"best": best, "smallest": fits[0] if fits else None,
            "smallest_without_accumulation": whole[0] if whole else None}


def plans(models: list[ModelSizes], accelerator: Accelerator, headroom: float) -> dict:
    """The whole plan of `models` on `accelerator`, as plain data (JSON-ready)."""
    return {
        "accelerator": dataclasses.asdict(accelerator),
        "headroom": headroom,
        "budget_bytes_per_replica": accelerator.budget_bytes(headroom),
        "configs": {m.name: {**plan_config(m, accelerator, headroom),
                             "smallest": smallest(m, headroom)} for m in models},
    }
