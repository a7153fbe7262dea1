"""Sampling (docs/design.md §5, §6): chunk-by-chunk generation with cached decoders (`sampler`,
`decoding`), logits processors, validity masks, forced prefixes for the conditional tasks
(`conditional`), and the figures made from samples.

May import `dct`, `data`, `model` and `runs`; never `train`, `evaluation` or `cli`, never gin.
"""

from dctformer_tf.sampling.processors import HeadSettings, SamplingSettings
from dctformer_tf.sampling.sampler import Sampler, SampleResult

__all__ = ["HeadSettings", "SampleResult", "Sampler", "SamplingSettings"]
