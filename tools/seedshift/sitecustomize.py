"""Shift every seed a notebook sets by ``AIGC_SEED_OFFSET`` (``make seeds`` only).

``tools/nbtools.py seeds`` puts this folder on the kernel's ``PYTHONPATH`` with
``AIGC_SEED_OFFSET=k``; Python imports ``sitecustomize`` at start-up, and this
one wraps ``random.seed``, ``numpy.random.seed``, ``torch.manual_seed`` and
``torch.Generator`` so that a chapter's ``seed_everything(0)``,
``torch.manual_seed(3)`` or ``torch.Generator().manual_seed(1)`` all become
another seed, without a line of the chapter changing. With the variable unset
(every ordinary run) it does nothing.
"""

from __future__ import annotations

import os


def _shift() -> None:
    offset = int(os.environ.get("AIGC_SEED_OFFSET", "0") or 0)
    if offset == 0:
        return
    import random

    import numpy as np
    import torch

    def moved(seed):
        return None if seed is None else int(seed) + offset

    _random_seed = random.seed
    random.seed = lambda a=None, version=2: _random_seed(moved(a), version)
    random._inst.seed = random.seed  # the module's hidden instance
    _np_seed = np.random.seed
    np.random.seed = lambda seed=None: _np_seed(
        None if seed is None else moved(seed) % 2**32
    )
    _torch_seed = torch.manual_seed
    torch.manual_seed = lambda seed: _torch_seed(moved(seed))
    torch.random.manual_seed = torch.manual_seed

    class Generator(torch.Generator):
        def manual_seed(self, seed):  # noqa: D401 - same signature as torch's
            return super().manual_seed(moved(seed))

    torch.Generator = Generator


_shift()
