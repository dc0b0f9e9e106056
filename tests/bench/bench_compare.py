#!/usr/bin/env python3
"""bench_compare.py - runs `kefuctl bench` of two builds alternately and prints both side by side.

    tests/bench/bench_compare.py OLD_BUILD_DIR [NEW_BUILD_DIR] [--runs N] [-- BENCH ARGS...]

NEW_BUILD_DIR defaults to ./build. Each run of each build is one `kefuctl bench` (its own broker,
workers and database); the builds alternate (old, new, old, new ...) so that a noisy machine
treats both alike. Prints every measure's runs and median for both builds and the ratio of the
medians (new / old). Run it for every change that touches the chat path (BENCHMARKS.md).
Exit status: 0, or 2 when a run failed.
"""
import re
import statistics
import subprocess
import sys

def parse(text):
    """The bench's Markdown table: measure -> its values (one, or two as in "p50 / p99")"""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) < 2 or cells[0] in ('measure', '---'):
            continue
        values = []
        for part in cells[1].replace(',', '').split(' / '):
            number = re.search(r'-?\d+(?:\.\d+)?', part)
            if number:
                values.append(float(number.group()))
        if values:
            # A label may hold numbers of its run (a rate, a count): drop them to match runs
            label = re.sub(r'\s*\(\d[^)]*\)', '', cells[0]).strip()
            rows[label] = values
    return rows

def main():
    args = sys.argv[1:]
    extra = []
    if '--' in args:
        at = args.index('--')
        args, extra = args[:at], args[at + 1:]
    runs = 3
    if '--runs' in args:
        at = args.index('--runs')
        runs = int(args[at + 1])
        del args[at:at + 2]
    if not args or args[0] in ('-h', '--help'):
        print(__doc__.strip())
        return 0 if args else 2
    builds = [('old', args[0]), ('new', args[1] if len(args) > 1 else 'build')]
    results = {name: [] for name, _ in builds}
    for run in range(runs):
        for name, directory in builds:
            done = subprocess.run([f'{directory}/kefuctl', 'bench'] + extra, capture_output=True,
                                  text=True)
            if done.returncode != 0:
                sys.stderr.write(f'bench of {directory} failed:\n{done.stderr}')
                return 2
            results[name].append(parse(done.stdout))
            print(f'run {run + 1} of {runs}: {name} ({directory}) done', file=sys.stderr)
    print(f'old: {builds[0][1]}, new: {builds[1][1]}, {runs} alternating runs each\n')
    print('| measure | old: runs | old median | new: runs | new median | new / old |')
    print('|---|---|---|---|---|---|')
    labels = list(results['new'][0]) + [l for l in results['old'][0] if l not in results['new'][0]]
    for label in labels:
        old = [r[label] for r in results['old'] if label in r]
        new = [r[label] for r in results['new'] if label in r]
        if not old or not new:      # A measure one build does not make: its runs alone
            runs = old or new
            medians = [statistics.median(v[p] for v in runs) for p in range(min(map(len, runs)))]
            cells = ' / '.join(f'{m:g}' for m in medians)
            print(f'| {label} | – | – | – | – | – |' if not runs else
                  f'| {label} | {"" if new else cells} | {"" if new else cells} | '
                  f'{cells if new else ""} | {cells if new else ""} | – |')
            continue
        width = min(len(v) for v in old + new)
        cells = [[], [], [], [], []]
        for part in range(width):
            old_part = [v[part] for v in old]
            new_part = [v[part] for v in new]
            old_median, new_median = statistics.median(old_part), statistics.median(new_part)
            cells[0].append(' '.join(f'{v:g}' for v in old_part))
            cells[1].append(f'{old_median:g}')
            cells[2].append(' '.join(f'{v:g}' for v in new_part))
            cells[3].append(f'{new_median:g}')
            cells[4].append(f'{new_median / old_median:.2f}×' if old_median else '–')
        print(f'| {label} | ' + ' | '.join(' / '.join(c) for c in cells) + ' |')
    return 0

if __name__ == '__main__':
    sys.exit(main())
