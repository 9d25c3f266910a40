"""Where a cold start's time goes, from CubeCL's autotune log.

CubeCL writes one "Fastest result <kernel>-<key>" line per tuned operation, followed by one
" - Tuning: <candidate> (compilation & bench: <time>)" line per candidate it tried. This sums the
candidate times (compiling and timing each candidate) overall, per candidate, per kind of
operation (the key's type: convolution, matmul, fused matmul, reduction…) and per operation, so
the kernels and shapes that make the warm-up long can be named. It also sums, per kind and
winning kernel, the winners' own timed runs: a rough map of where a tuned step goes (each shape
counted once, however often the network repeats it), and how often the winner was the only
candidate that ran at all ("alone": the others declined the shape or type).

    python3 benches/gpu/autotune_summary.py autotune.log [--top N]
"""

import argparse
import re
import sys
from collections import Counter

UNITS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
CANDIDATE = re.compile(r"Tuning: (\S+) \(compilation & bench: ([\d.]+)(ns|µs|us|ms|s)\)")
TOP_TIMES = re.compile(r"Top 3 times: \[(.*?)\]")
TIME = re.compile(r"\(\d+, ([\d.]+)(ns|µs|us|ms|s)\)")


def summarise(lines):
    """Operations tuned, candidates tried, and seconds per candidate, per kind of operation and
    per operation (its key's first 160 characters); and per (kind, winner): operations won,
    seconds of the winners' timed runs, and operations where the winner ran alone."""
    tuned = candidates = 0
    per_candidate = Counter()
    per_kind = Counter()
    per_operation = Counter()
    winners = {}
    operation = kind = "?"
    for line in lines:
        if line.startswith("Fastest result "):
            # "Fastest result <winner>-<KeyType> { shapes … }. Top 3 times: [(index, time), …]"
            winner, key = line[len("Fastest result "):].split(". Top")[0].split("-", 1)
            kind = re.split(r"[\s{]", key, maxsplit=1)[0]
            operation = key[:160]
            tuned += 1
            top = TOP_TIMES.search(line)
            times = TIME.findall(top.group(1)) if top else []
            if times:
                won = winners.setdefault((kind, winner), [0, 0.0, 0])
                won[0] += 1
                won[1] += float(times[0][0]) * UNITS[times[0][1]]
                won[2] += len(times) == 1
            continue
        found = CANDIDATE.search(line)
        if found:
            seconds = float(found.group(2)) * UNITS[found.group(3)]
            candidates += 1
            per_candidate[found.group(1)] += seconds
            per_kind[kind] += seconds
            per_operation[operation] += seconds
    return tuned, candidates, per_candidate, per_kind, per_operation, winners


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log")
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args()
    try:
        with open(args.log, encoding="utf-8", errors="replace") as log:
            tuned, candidates, per_candidate, per_kind, per_operation, winners = summarise(log)
    except OSError as error:
        sys.exit(f"{args.log}: {error}")
    total = sum(per_candidate.values())
    print(
        f"{args.log}: {tuned} operations tuned, {candidates} candidates, "
        f"{total:.1f} s of compiling and timing them"
    )
    tables = (("candidate", per_candidate), ("kind", per_kind), ("operation", per_operation))
    for title, counts in tables:
        print(f"| {title} | seconds | share |\n|---|---|---|")
        for name, seconds in counts.most_common(args.top):
            print(f"| {name} | {seconds:.2f} | {100 * seconds / max(total, 1e-12):.0f}% |")
    won_total = sum(won[1] for won in winners.values())
    print("| kind | winner | operations | winners' time (ms) | share | alone |\n|---|---|---|---|---|---|")
    ranked = sorted(winners.items(), key=lambda item: -item[1][1])
    for (kind, winner), (count, seconds, alone) in ranked[: args.top]:
        share = 100 * seconds / max(won_total, 1e-12)
        print(f"| {kind} | {winner} | {count} | {1e3 * seconds:.1f} | {share:.0f}% | {alone} |")


if __name__ == "__main__":
    main()
