"""Training (docs/design.md §4, §4.1): `experiment.train`, the gin-configured entry point, and
what it is made of: the Keras model that trains (`trainer`, `nonfinite`, `schedules`),
distribution (`strategy`, `replicas`), checks before a run and resuming after one
(`preflight`, `recovery`, `run_lock`), callbacks (`callbacks`, `callback_list`,
`sample_callback`, `bpd_callback`), the settings a run restores (`scoped_settings`), the
TensorFlow-free gin selectors (`gin_model`) and the run on any Keras backend (`portable`).

May import every package but `cli`. gin only in `experiment.py` and `gin_model.py`.
"""
