"""Derive the incident sets from public data, reproducibly.

Two steps per autopilot, each in `evals/builders/<graph>.py`:
  extract(data_dir, out_dir)  the public data -> a small committed extract (evals/sources/<graph>/)
  build(sources_dir)          the extract -> incidents (evals/incidents/<graph>/derived.jsonl)

`python -m evals.build [GRAPH ...] [--extract --data ../shared/data] [--check]`. Without
`--extract` only the committed extracts are read, so a fresh clone rebuilds the same bytes;
`--check` fails if the committed `derived.jsonl` differs from what the builder makes.
Hand-written edge cases live next to it in `edge_cases.jsonl` and are never generated.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from pathlib import Path

from evals.format import dump_incidents

ROOT = Path(__file__).resolve().parent
SOURCES = ROOT / "sources"
INCIDENTS = ROOT / "incidents"


def builders() -> list[str]:
    """The autopilots with a builder module (`evals/builders/<graph>.py`)."""
    from graphs import autopilots

    return sorted(p.stem for p in (ROOT / "builders").glob("*.py") if p.stem in autopilots())


def build_one(graph: str, *, extract_from: Path | None = None, out: Path = INCIDENTS) -> Path:
    module = importlib.import_module(f"evals.builders.{graph}")
    sources = SOURCES / graph
    if extract_from is not None:
        sources.mkdir(parents=True, exist_ok=True)
        module.extract(extract_from, sources)
    incidents = module.build(sources)
    wrong = [i.id for i in incidents if i.graph != graph]
    if wrong:
        raise SystemExit(f"{graph} builder made incidents for another graph: {wrong[:5]}")
    target = out / graph / "derived.jsonl"
    dump_incidents(incidents, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("graphs", nargs="*", help="default: every builder")
    parser.add_argument("--extract", action="store_true",
                        help="re-make the committed extracts from the public data first")
    parser.add_argument("--data", type=Path, default=ROOT.parent.parent / "shared" / "data",
                        help="the public data folder (default: ../shared/data)")
    parser.add_argument("--check", action="store_true",
                        help="fail if a committed derived.jsonl differs from a rebuild")
    args = parser.parse_args(argv)
    graphs = args.graphs or builders()
    if args.extract and not args.data.is_dir():
        parser.error(f"--data {args.data} is not a folder")
    stale = []
    for graph in graphs:
        if args.check:
            with tempfile.TemporaryDirectory() as tmp:
                made = build_one(graph, out=Path(tmp))
                committed = INCIDENTS / graph / "derived.jsonl"
                if not committed.exists() or committed.read_bytes() != made.read_bytes():
                    stale.append(graph)
            continue
        target = build_one(graph, extract_from=args.data if args.extract else None)
        print(f"{graph}: {sum(1 for _ in target.open())} incidents -> "
              f"{target.relative_to(ROOT.parent)}")
    if stale:
        print(f"out of date (run python -m evals.build {' '.join(stale)}): {', '.join(stale)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
