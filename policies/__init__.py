"""Policies trained offline from the store: ACT, Diffusion Policy and MT-pi.

Layers, each one place:
  config.py        PolicyConfig: what every policy's typed config shares (durations in s)
  features.py      cameras, image shapes, rate, keys: from the store schema
  action_space.py  6D rotations, absolute/relative targets: the one conversion module
  normalization.py feature and image statistics
  images.py        resize, random/centre crop
  encoders.py      the project's ResNet-18 (GroupNorm), spatial softmax / pooling heads
  model.py         ChunkModel: the network contract (shapes glossary there)
  network.py       PolicyNetwork: preprocessing + model, identical in training and inference
  policy.py        Policy (reset/act), ChunkPolicy, load_policy (any checkpoint)
  act/, diffusion/ the models, their configs and presets, registered in registry.py
  motion_tracks/   MT-pi: its own data, network and policy (tracks -> 3D -> chunks)
  data.py, train.py, evaluate.py, cli.py: rl train / rl eval
"""
