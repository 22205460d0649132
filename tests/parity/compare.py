#!/usr/bin/python3
"""Compares imgpipe's results with the Python reference on the same photos and prints the agreement.

  compare.py REFERENCE.jsonl IMGPIPE.jsonl [--min-agreement 0.95] [--confident 0.5]

REFERENCE.jsonl: reference.py's lines ({"image", "top5": [[label, prob], ...]}); IMGPIPE.jsonl: `imgpipe run
--top-k 5 -o` lines. Fails (exit 1) when top-1 agrees on fewer than --min-agreement of the photos both
classified, or when any photo the reference is confident about (top-1 probability >= --confident) gets another
top-1 from imgpipe. Photos only one side could read are listed, not counted.
"""
import argparse
import json
import sys


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return {line["image"]: line for line in map(json.loads, filter(str.strip, f))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("reference")
    ap.add_argument("imgpipe")
    ap.add_argument("--min-agreement", type=float, default=0.95)
    ap.add_argument("--confident", type=float, default=0.5)
    args = ap.parse_args()

    reference = read_lines(args.reference)
    ours = read_lines(args.imgpipe)
    both = sorted(p for p in reference if p in ours and ours[p].get("label") is not None)
    only_reference = sorted(p for p in reference if p not in both)
    only_ours = sorted(p for p in ours if p not in reference and ours[p].get("label") is not None)

    agree = 0
    confident = confident_agree = 0
    top5_overlap = 0.0
    prob_diffs = []
    for path in both:
        ref_top = reference[path]["top5"]
        our_top = ours[path]["top"]
        same = ref_top[0][0] == ours[path]["label"]
        agree += same
        top5_overlap += len({l for l, _ in ref_top} & {l for l, _ in our_top}) / len(ref_top)
        if same:
            prob_diffs.append(abs(ref_top[0][1] - ours[path]["score"]))
        if ref_top[0][1] >= args.confident:
            confident += 1
            confident_agree += same
            if not same:
                print(f"confident photo disagrees: {path}: reference {ref_top[0]}, imgpipe "
                      f"{[ours[path]['label'], ours[path]['score']]}")
        elif not same:
            print(f"disagrees: {path}: reference {ref_top[:2]}, imgpipe {our_top[:2]}")

    n = len(both)
    rate = agree / n if n else 0.0
    print(f"photos classified by both: {n} (reference only: {len(only_reference)}, imgpipe only: {len(only_ours)})")
    for path in only_reference:
        print(f"  not classified by imgpipe: {path}: {ours.get(path, {}).get('error', 'no line')}")
    for path in only_ours:
        print(f"  not classified by the reference: {path}")
    print(f"top-1 agreement: {agree}/{n} = {100 * rate:.1f}%")
    print(f"confident photos (reference top-1 >= {args.confident}): {confident_agree}/{confident} agree")
    if n:
        print(f"top-5 overlap: {100 * top5_overlap / n:.1f}%")
    if prob_diffs:
        prob_diffs.sort()
        print(f"top-1 probability difference where they agree: median {prob_diffs[len(prob_diffs) // 2]:.3f}, "
              f"max {prob_diffs[-1]:.3f}")
    ok = n > 0 and rate >= args.min_agreement and confident_agree == confident
    print("PARITY " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
