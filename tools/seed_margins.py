"""Which gates of a swept chapter hold on every seed with margin?

    python tools/seed_margins.py notebooks/05_gans/dcgan.ipynb

For each ``metric`` gate of the chapter's committed run, reads the values of
its seed sweep (``aigc_utils/assets/seeds``) and compares the gate's bound with
the worst seed: a bound passes with margin when it lies at least one seed spread
(max - min) beyond the worst value. Orders must hold on every seed. Prints
one line per gate and ends non-zero if any gate lacks its margin.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import repro

BOUND = re.compile(r"^(<=|>=) (\S+)$|^in \[(\S+), (\S+)\]$")


def margins(path: Path) -> list[tuple[str, str]]:
    record = repro.seed_record(path)
    if not record:
        raise SystemExit(f"no seed record for {path.name}: make seeds NB={path}")
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(
        repro.stream_text(c.outputs) for c in nb.cells if c.cell_type == "code"
    )
    rows = []
    for line in text.splitlines():
        m = repro.METRIC.match(line.strip())
        if m:
            values = [v for v in record["values"].get(m["name"], []) if v is not None]
            if len(values) < 2:
                rows.append((m["name"], "no seed values"))
                continue
            lo, hi = min(values), max(values)
            spread = hi - lo
            b = BOUND.match(m["bound"])
            verdict = []
            if b and b.group(1) == "<=":
                bound = float(b.group(2))
                verdict.append(
                    ("ok" if hi + spread <= bound else "TIGHT") + f" <= {bound:g}"
                )
            elif b and b.group(1) == ">=":
                bound = float(b.group(2))
                verdict.append(
                    ("ok" if lo - spread >= bound else "TIGHT") + f" >= {bound:g}"
                )
            elif b:
                blo, bhi = float(b.group(3)), float(b.group(4))
                ok = lo - spread >= blo and hi + spread <= bhi
                verdict.append(("ok" if ok else "TIGHT") + f" in [{blo:g}, {bhi:g}]")
            vals = ", ".join(f"{v:.4g}" for v in values)
            rows.append(
                (m["name"], f"{' '.join(verdict)}  seeds [{vals}] spread {spread:.3g}")
            )
            continue
        m = repro.ORDER.match(line.strip())
        if m:
            oks = record["ok"].get(m["name"], [])
            rows.append(
                (
                    m["name"],
                    "order "
                    + ("ok on all seeds" if all(oks) else f"FAILS on a seed {oks}"),
                )
            )
    return rows


if __name__ == "__main__":
    bad = 0
    for arg in sys.argv[1:]:
        for name, verdict in margins(Path(arg).resolve()):
            print(f"{name:45s} {verdict}")
            bad += ("TIGHT" in verdict) or ("FAILS" in verdict)
    sys.exit(1 if bad else 0)
