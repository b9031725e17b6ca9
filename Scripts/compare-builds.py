#!/usr/bin/env python3
"""Runs two builds of xenctx-swift over every corpus case and compares what they print.

For a refactoring that must not change output: each case's upstream argument sets (from its
case.json, `{domid}` made `--core FILE`, `{map}` the case's System.map) plus the tool's own
views (--json, --summary, --tasks --stack, --hung, --meminfo, --log, -f/-S, --unwind), with and
without the map. stdout, stderr and exit status must be equal; timings are masked. Prints one
line per difference and a count; exit 1 when any differ. Needs the cores and maps decompressed
into .build/corpus-cache (the tests do it). Not part of CI (a few minutes).

    Scripts/compare-builds.py OLD_BINARY NEW_BINARY [CASE_SUBSTRING]
"""
import concurrent.futures, json, os, re, subprocess, sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
cache = os.path.join(root, ".build/corpus-cache")
OURS = [["-C"], ["-C", "--describe"], ["-C", "--unwind", "scan"], ["-C", "-S"], ["-C", "-f"], ["-C", "-f", "-S"],
        ["-C", "--unwind", "scan", "-f", "-S"], ["-a", "-C", "-x", "-b", "20"], ["-C", "-n", "2", "-t"], ["-C", "-l", "0"],
        ["-C", "-l", "3", "-b", "4"], ["--json", "-C", "--tasks", "--stack", "--modules", "--log"], ["--json", "--hung"],
        ["--summary"], ["--hung"], ["--tasks", "--stack"], ["--meminfo"], ["--log"], ["--modules"], ["1"], ["--task", "1"]]


def mask(s):
    return re.sub(r"[0-9.]+ (ms|µs|s)\b", "N \\1", s)


def run(binary, args):
    p = subprocess.run([binary] + args, capture_output=True, timeout=300)
    return p.returncode, mask(p.stdout.decode("utf-8", "replace")), mask(p.stderr.decode("utf-8", "replace"))


def cases(filter_):
    for name in sorted(os.listdir(os.path.join(root, "corpus/cases"))):
        if filter_ and filter_ not in name:
            continue
        meta = json.load(open(os.path.join(root, "corpus/cases", name, "case.json")))
        core = os.path.join(cache, name, meta["core"].replace(".xz", ""))
        if not os.path.exists(core):
            print(f"{name}: not decompressed ({core})")
            continue
        smap = os.path.join(cache, "maps", f"{meta.get('kernel')}.System.map")
        sets = [[x for a in u["args"] for x in (["--core", core] if a == "{domid}" else [smap] if a == "{map}" else [a])]
                for u in meta.get("upstream", [])]
        for s in OURS:
            sets.append(s + ["--core", core])
            if os.path.exists(smap):
                sets.append(s + ["-s", smap, "--core", core])
        yield name, sets


def main():
    old, new = sys.argv[1], sys.argv[2]
    filter_ = sys.argv[3] if len(sys.argv) > 3 else ""
    jobs = []
    for name, sets in cases(filter_):
        for s in sets:
            jobs.append((name, s))
    differ = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = pool.map(lambda j: (j, run(old, j[1]), run(new, j[1])), jobs)
        for (name, args), a, b in results:
            if a != b:
                differ += 1
                what = [k for k, x, y in zip(("status", "stdout", "stderr"), a, b) if x != y]
                print(f"DIFF {name}: {' '.join(args)}: {', '.join(what)}")
    print(f"{len(jobs)} runs, {differ} differ")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
