"""What the training workers' fork server imports once (jobs._context), so no run pays for it after Start.

torch.optim imports torch._dynamo the first time an optimizer is built (~1 s and ~150 MB, measured 2026-12-03): in
a worker forked per run, that was most of the wait from Start to the first step. Built once here, every forked
worker inherits it. Only the fork server imports this module: the app server never imports torch._dynamo (ui/state.py).
"""
import torch

from . import worker  # noqa: F401  (torch and aecore's training code, imported once for every run)

torch.optim.Adam([torch.zeros(1, requires_grad=True)])
