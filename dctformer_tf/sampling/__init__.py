"""Sampling (docs/design.md §5): chunk-by-chunk generation with cached decoders, logits processors,
validity masks, forced prefixes, and the figures made from samples."""

from dctformer_tf.sampling.processors import HeadSettings, SamplingSettings
from dctformer_tf.sampling.sampler import Sampler, SampleResult

__all__ = ["HeadSettings", "SampleResult", "Sampler", "SamplingSettings"]
