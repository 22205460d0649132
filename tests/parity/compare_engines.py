#!/usr/bin/python3
"""Compares two `imgpipe run --top-k 5 -o` results of the same photos made on different engines or precisions.

  compare_engines.py REFERENCE.jsonl OTHER.jsonl --name NAME [--min-agreement A] [--max-score-diff D]

Prints one line: NAME, photos compared, top-1 agreement, the largest and the mean difference of the top-1
probability where the labels agree, and the photos whose label changed. Fails (exit 1) when the agreement is
below --min-agreement, when any top-1 probability moved by more than --max-score-diff, or when the two sides do
not give the same set of photos a label (an engine must not fail an image the other reads).
"""
import argparse
import sys

from compare import read_lines  # one JSON Lines reader for both parity scripts (this folder is on sys.path)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("reference")
    parser.add_argument("other")
    parser.add_argument("--name", required=True)
    parser.add_argument("--min-agreement", type=float, default=1.0)
    parser.add_argument("--max-score-diff", type=float, default=1.0)
    args = parser.parse_args()

    reference, other = read_lines(args.reference), read_lines(args.other)
    labelled = lambda lines: {image for image, line in lines.items() if line.get("label") is not None}
    if labelled(reference) != labelled(other) or set(reference) != set(other):
        print(f"{args.name}: the two runs labelled different photos: only in the reference "
              f"{sorted(labelled(reference) - labelled(other))}, only in the other {sorted(labelled(other) - labelled(reference))}")
        return 1
    both = sorted(labelled(reference))
    changed = [f"{image}: {reference[image]['label']} -> {other[image]['label']}" for image in both
               if reference[image]["label"] != other[image]["label"]]
    diffs = [abs(reference[image]["score"] - other[image]["score"]) for image in both
             if reference[image]["label"] == other[image]["label"]]
    agreement = (len(both) - len(changed)) / len(both) if both else 0.0
    largest = max(diffs, default=0.0)
    mean = sum(diffs) / len(diffs) if diffs else 0.0
    print(f"{args.name}: {len(both)} photos, top-1 agrees on {len(both) - len(changed)} ({100 * agreement:.1f}%), "
          f"top-1 probability differs by at most {largest:.2g} (mean {mean:.2g})")
    for line in changed:
        print(f"  changed: {line}")
    if not both or agreement < args.min_agreement or largest > args.max_score_diff:
        print(f"{args.name}: FAILED (wanted agreement >= {args.min_agreement}, probability difference <= "
              f"{args.max_score_diff})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
