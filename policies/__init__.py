"""Policies (ACT, diffusion, MT-pi) trained on the store's ``SequenceDataset``.

Not implemented yet (a later issue). The sampler contract they consume is documented in
``robot_learning/store/sampler.py``.
"""
