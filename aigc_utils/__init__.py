"""aigc_utils: the helper package of the executable AIGC textbook.

Modules:
    data: MNIST and Tiny Shakespeare, offline or downloaded with verification.
    runtime: device choice, seeding, environment description.
    training: the ``fit`` loop and its ``History``.
    plotting: image grids and training curves.
    checkpoints: save/load weights with the config that built them.
    report: ``gate``, how a chapter states a measured number and its threshold.
"""

__version__ = "0.1.0"
