"""Evaluation (docs/design.md §7): held-out bits per dimension (`bpd`, `likelihood`), the
Pillow JPEG baseline and the model-against-JPEG comparison (`jpeg`, `compression`), sample
quality (`features`, `frechet`, `precision_recall`, `sample_metrics`, the `shapes`
classifier), structure and AC placement (`structure`, `placement`), sequence lengths,
the generative classifier, and the report behind `dctformer evaluate` (`report`, `plots`).

May import `dct`, `data`, `model`, `runs` and `sampling`; never `train` or `cli`. gin only
in `features.py` (the configurable Inception weights path).
"""
