"""aigc_utils: the helper package of the executable AIGC textbook.

Modules:
    data: MNIST and Tiny Shakespeare, offline or downloaded with verification.
    runtime: device choice, seeding, environment description.
    training: the ``fit`` loop and its ``History``.
    plotting: image grids and training curves.
    checkpoints: save/load weights with the config that built them.
    report: ``gate``, ``gate_order``, ``skipped``, ``glue``, ``glued``,
        ``seed_values`` and ``check``: how a chapter states a measured number
        or a ranking, says a gate does not apply, reads another chapter's
        number or its own seed sweep, and checks a student's answer.
    source: ``show_source``, the package's code shown on the page.
    longrun: the chapters' models trained for much longer, with shipped weights.
    tokenizers: byte-level byte-pair encoding.
    lora, preference: low-rank adapters and direct preference optimisation.
"""

__version__ = "0.1.0"
