#!/usr/bin/env python3
"""Compares xenctx-swift with upstream xenctx in a lab-check results folder.

usage: compare.py RESULTS_DIR XENCTX_SWIFT_BINARY
Prints one line per check and a closing 'N passed, N failed' line; exits 1 on any failure.
"""
import os, re, subprocess, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from labcheck import Checks, image_bounds

results, binary = sys.argv[1], sys.argv[2]
check = Checks()


def ours_filtered(text):
    return "\n".join(l for l in text.split("\n") if not l.startswith(("Stack pointer: ", "Stack note: ")))

kver = open(os.path.join(results, "kver.txt")).read().strip()
default_map = os.path.join(results, "System.map-" + kver)


def drop_symbols_outside_image(s, text, end):
    """Upstream names any address above -k with the nearest symbol (sym+0xhuge); we do not."""
    out = []
    for line in s.split("\n"):
        m = re.match(r"^(.*\[<([0-9a-f]+)>\]) (?!<--)(\S+)( <--)?$", line)
        if m and not (text <= int(m.group(2), 16) <= end):
            line = m.group(1) + (m.group(4) or "")
        # `rip: ADDR sym` (x86_64) and `cs:eip: SEL:ADDR sym` (32-bit) name the register's value.
        m = re.match(r"^((?:rip: |cs:eip: [0-9a-f]{4}:)([0-9a-f]{8,16})) \S+$", line)
        if m and not (text <= int(m.group(2), 16) <= end):
            line = m.group(1)
        m = re.match(r"^( gs: \S+ @ )([0-9a-f]{8,16})/([0-9a-f]{8,16})( \S+)?/( \S+)?$", line)
        if m:
            k, u = int(m.group(2), 16), int(m.group(3), 16)
            line = m.group(1) + m.group(2) + "/" + m.group(3) + \
                (m.group(4) if m.group(4) and text <= k <= end else "") + "/" + \
                (m.group(5) if m.group(5) and text <= u <= end else "")
        out.append(line)
    return "\n".join(out)

def blocks(s):
    """The output split at `vcpuN:` / `vcpuN offline` headers."""
    out, cur = [], []
    for line in s.split("\n"):
        if re.match(r"^vcpu\d+(:| offline)$", line) and cur: out.append(cur); cur = []
        cur.append(line)
    out.append(cur)
    return ["\n".join(b) for b in out]

def only_zero_words(lines, cut_line_column_is_ours):
    """Whether the rest of a dump (the rest of the line where ours stopped, then whole lines)
    is zero words only: addresses aside, and ASCII columns (after two spaces) only dots, but
    for the cut line's when it also decodes our words before the cut (as the upstream-equality
    test's onlyZeroWords)."""
    bodies = [re.sub(r"^[0-9a-f]+:", "", l) for l in lines]
    words = [b.split("  ")[0] for b in bodies]
    columns = [b.split("  ", 1)[1] for b in bodies[1 if cut_line_column_is_ours else 0:] if "  " in b]
    return "0" in "".join(words) and all(set(w) <= set(" 0") for w in words) and all(set(c) <= set(". ") for c in columns)

def stopped_dump_divergence(up, ours, err):
    """A stack dump that reached an unmapped page (`-n 2 -l MAX` past a PVH stack's guard
    page): upstream reads it as guest frame 0 and goes on; ours stops there with a warning
    and prints the trace over what it read (README, divergences). Every block must equal
    upstream's, except such a block: its part before our trace a prefix of upstream's, the
    rest of upstream's dump zero words, and our trace upstream's (if it printed one) without
    the lines of words at or above the unreadable address."""
    m = re.search(r"cannot read ([0-9a-f]+): not mapped", err)
    if not m: return False
    unreadable = int(m.group(1), 16)
    a, b = blocks(up), blocks(ours)
    if len(a) != len(b): return False
    stopped = 0
    for u, o in zip(a, b):
        if u == o: continue
        m = re.search(r"\n(Call|Stack) Trace:\n", o)
        if not m: return False
        head = o[:m.start()].rstrip("\n").split("\n")
        ul = u.split("\n")
        if len(ul) < len(head) or ul[:len(head) - 1] != head[:-1] or not ul[len(head) - 1].startswith(head[-1]): return False
        um = re.search(r"\n" + m.group(1) + r" Trace:\n", u)
        if um:
            rest = [ul[len(head) - 1][len(head[-1]):]] + u[:um.start()].split("\n")[len(head):]
            if not only_zero_words(rest, cut_line_column_is_ours=True): return False
            kept = [l for l in u[um.start():].split("\n")
                    if not (re.match(r"^[0-9a-f]+:", l) and int(l.split(":")[0], 16) >= unreadable)]
            if "\n".join(kept) != o[m.start():]: return False
        stopped += 1
    return stopped > 0

def offline_vcpu_divergence(up, up_err, ours, err):
    """A named vCPU that Xen took down: upstream prints nothing (libxc's error), ours says
    so on stderr and shows the last context Xen holds (README, issue #13 item 4)."""
    return up.strip() == "" and "is offline" in err and ours.strip() != ""

def endless_chain_divergence(up, up_rc, ours, err):
    """`-f` through a frame pointer that is not one (an interrupted function using bp as a
    general register): upstream follows it and never ends (killed by the lab's timeout);
    ours stops with a warning (README, divergences). Ours must be a prefix of upstream's."""
    return up_rc == "124" and "frame-pointer walk:" in err and up.startswith(ours.rstrip("\n"))

def kernel_start_divergence(up, ours, cmd, gtype):
    """A 32-bit HVM/PVH guest, no -s and no -k: upstream takes the 64-bit default kernel_start
    (by the size of Xen's context), so it prints no stack; ours does (README, divergences).
    Every block must be upstream's once our Stack: section (through its trace) is taken out."""
    if not gtype.endswith("32") or " -s " in cmd or " -k " in cmd: return False
    a, b = blocks(up), blocks(ours)
    if len(a) != len(b): return False
    cut = 0
    for u, o in zip(a, b):
        if u == o: continue
        # Our section: from `Stack:` through the last line of its trace (before the empty line).
        without = re.sub(r"(?m)^Stack:\n.*?Trace:\n.*?\n(?=\n|\Z)", "", o, count=1, flags=re.S)
        if "Stack:" in u or without != u: return False
        cut += 1
    return cut > 0

def unmapped_dump_divergence(up, ours, err):
    """`-m`/`-d` at an address the guest does not map (the System.map's address of a KASLR
    kernel's linux_banner): upstream's translation answers 0 on an HVM/PVH guest and it dumps
    guest frame 0; ours stops at the first unreadable word with a warning (README, divergence
    6). Ours must be upstream's up to that point, the rest of upstream's nothing but zero
    words, their dots and their addresses."""
    if "not mapped" not in err and "cannot be read" not in err: return False
    u, o = up.split("\n"), ours.split("\n")
    if o and o[-1] == "": o = o[:-1]
    if not o or len(u) <= len(o) or u[:len(o) - 1] != o[:-1] or not u[len(o) - 1].startswith(o[-1]): return False
    # Ours stopped at the line's first word, so the cut line's ASCII column holds nothing of ours.
    return only_zero_words([u[len(o) - 1][len(o[-1]):]] + u[len(o):], cut_line_column_is_ours=False)

def first_diff(a, b):
    a, b = a.split("\n"), b.split("\n")
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else "<end>"; y = b[i] if i < len(b) else "<end>"
        if x != y: return f"line {i+1}: upstream {x!r} / ours {y!r}"
    return ""

for dom in sorted(os.listdir(results)):
    d = os.path.join(results, dom)
    # Every guest's folder (lab-*, pvh-*, ...): the ones upstream xenctx ran on.
    if dom == "host" or not os.path.isdir(d) or not any(f.startswith("xenctx") for f in os.listdir(d)): continue
    # The domain's own System.map (the scenario keeps it beside upstream's outputs: 32-bit
    # guests have their own kernel), else the run's.
    mapfile = os.path.join(d, "System.map") if os.path.exists(os.path.join(d, "System.map")) else default_map
    text, end = image_bounds(mapfile)
    gtype = open(os.path.join(d, "type.txt")).read().strip() if os.path.exists(os.path.join(d, "type.txt")) else "pv"
    # Upstream runs the lab's timeout killed: their output is cut short, and they never undid
    # their pause of the domain.
    killed = sorted(f[:-3] for f in os.listdir(d) if f.startswith("xenctx") and f.endswith(".rc") and open(os.path.join(d, f)).read().strip() == "124")
    for f in sorted(os.listdir(d)):
        if not (f.startswith("xenctx") and f.endswith(".out")) or "after-dump" in f: continue
        n = f[:-4]
        up = open(os.path.join(d, f)).read()
        p = os.path.join(d, "swift-" + n + ".out")
        if not os.path.exists(p):
            check(False, f"{dom} {n}: xenctx-swift did not run"); continue
        ours = ours_filtered(open(p).read())
        err = open(os.path.join(d, "swift-" + n + ".err")).read() if os.path.exists(os.path.join(d, "swift-" + n + ".err")) else ""
        up_err = open(os.path.join(d, n + ".err")).read() if os.path.exists(os.path.join(d, n + ".err")) else ""
        cmd = open(os.path.join(d, n + ".cmd")).read()
        if n in killed:
            print(f"SKIP {dom} {n}: upstream was killed by the lab's timeout (its output is cut short)")
            continue
        if " -k " in cmd and " -s " in cmd: up = drop_symbols_outside_image(up, text, end)
        if ours != up and stopped_dump_divergence(up, ours, err):
            check(True, f"{dom} {n}: live output equals upstream's up to the unreadable page (divergence: upstream reads frame 0)")
        elif ours != up and endless_chain_divergence(up, open(os.path.join(d, n + ".rc")).read().strip(), ours, err):
            check(True, f"{dom} {n}: live output is upstream's up to where our -f walk stops; upstream never ended (divergence)")
        elif ours != up and kernel_start_divergence(up, ours, cmd, gtype):
            check(True, f"{dom} {n}: live output equals upstream's but for the stack upstream omits (divergence: its kernel_start for a 32-bit guest)")
        elif ours != up and unmapped_dump_divergence(up, ours, err):
            check(True, f"{dom} {n}: live output is upstream's up to the unmapped address; upstream dumps frame 0 from there (divergence)")
        elif ours != up and offline_vcpu_divergence(up, up_err, ours, err):
            check(True, f"{dom} {n}: named offline vCPU: upstream prints nothing, ours notes it (divergence)")
        else:
            check(ours == up, f"{dom} {n}: live output equals upstream's", first_diff(up, ours))
    # --save-core of the same paused moment, read back with --core, gives the live report.
    core = os.path.join(d, dom + ".swift.core")
    if os.path.exists(core):
        for n, extra in [("xenctx-s-S-C", ["-s", mapfile, "-S", "-C"]), ("xenctx-s-f-C", ["-s", mapfile, "-f", "-C"]),
                         ("xenctx-a-C", ["-a", "-C"])]:
            live = os.path.join(d, "swift-" + n + ".out")
            if not os.path.exists(live): continue
            # As the live runs were: the System.map's addresses as they are (--kaslr 0) with -s.
            kaslr = ["--kaslr", "0"] if "-s" in extra else []
            r = subprocess.run([binary, "--unwind", "scan"] + kaslr + extra + ["--core", core], capture_output=True, text=True)
            live_text = open(live).read()
            # A vCPU that never started is in no core (Xen records started vCPUs only): live
            # -C ends with `vcpuN offline` for it, the core has no vcpuN.
            never = re.search(r"\n(vcpu(\d+) offline\n\n?)$", live_text)
            if never and f"vcpu{never.group(2)}" not in r.stdout and r.stdout == live_text[:never.start(1)]:
                check(True, f"{dom} {n}: --save-core read back equals the live report (but vcpu{never.group(2)}, never started, which no core holds)")
                continue
            check(r.stdout == live_text, f"{dom} {n}: --save-core read back equals the live report",
                  first_diff(open(live).read(), r.stdout) + " " + r.stderr[:200])
        rc = open(os.path.join(d, "swift-save-core-again.rc")).read().strip()
        check(rc == "2", f"{dom}: a second --save-core to the same file is refused (rc {rc})")
    else:
        check(False, f"{dom}: no --save-core output")
    desc = os.path.join(d, "swift-describe.out")
    if os.path.exists(desc):
        m = re.search(r"was paused for ([0-9.]+ ms)", open(desc).read())
        check(m is not None, f"{dom}: pause window reported" + (f" ({m.group(1)})" if m else ""))
    # Runs of the lab before swift-sig-before.txt did not undo a killed upstream run's pause,
    # so the domain stayed paused.
    for sig, signo in (("INT", 2), ("TERM", 15), ("HUP", 1)):
        during = os.path.join(d, f"swift-sig{sig}-during.txt")
        if not os.path.exists(during): continue
        if killed and not os.path.exists(os.path.join(d, "swift-sig-before.txt")):
            print(f"SKIP {dom}: SIG{sig} while paused: upstream's {killed[0]} was killed while it held the domain paused, and this run did not undo that pause")
            continue
        rc = open(os.path.join(d, f"swift-sig{sig}.rc")).read().strip()
        check(rc == str(128 + signo), f"{dom}: SIG{sig} ends the run (rc {rc})")
        state = lambda p: open(p).read().strip().split("\n")[-1].split()[4]
        s_during, s_after = state(during), state(os.path.join(d, f"swift-sig{sig}-after.txt"))
        if "s" in s_during or "s" in s_after:
            # Xen shut the domain down (e.g. a vCPU's triple fault): it stays paused whatever we do.
            print(f"SKIP {dom}: SIG{sig} while paused: the domain was shut down (state {s_during} during, {s_after} after)")
            continue
        check("p" in s_during and "p" not in s_after,
              f"{dom}: SIG{sig} while paused: state {s_during} during, {s_after} after")
    live_desc = os.path.join(d, "swift-live-describe.out")
    if os.path.exists(live_desc):
        m = re.search(r"was paused for ([0-9.]+ ms)", open(live_desc).read())
        check(m is not None, f"{dom}: pause window on the running guest" + (f": {m.group(1)}" if m else ""))

    windows = os.path.join(d, "pause-windows.txt")
    if os.path.exists(windows):
        vals = {}
        for line in open(windows):
            k, v = line.split()
            vals.setdefault(k, []).append(float(v))
        med = {k: sorted(v)[len(v) // 2] for k, v in vals.items()}
        up, ours = med.get("upstream-run-ms"), med.get("swift-pause-ms")
        check(up is not None and ours is not None and ours * 20 <= up,
              f"{dom}: pause window, medians of {len(vals.get('swift-pause-ms', []))} runs: xenctx-swift {ours} ms"
              f" (no map: {med.get('swift-nomap-pause-ms')} ms) vs upstream's whole run {up} ms")

# --save-core beside `xl dump-core` of the same domain, from the scenario's own timings
# ("rc=0 (T0 -> T1) CMD", dom0 uptime seconds).
log = os.path.join(results, "scenario.log")
if os.path.exists(log):
    took = {}
    for line in open(log):
        m = re.search(r"rc=(\d+) \(([0-9.]+) -> ([0-9.]+)\) (.*)$", line)
        if not m: continue
        cmd = m.group(4)
        dm = re.search(r"(?:dump-core \d+|--save-core) (\S+)/([^/ ]+?)(?:\.swift)?\.core", cmd)
        if not dm or "second" in cmd: continue
        tool = "xenctx-swift" if "--save-core" in cmd else "xl"
        took.setdefault(dm.group(2), {}).setdefault(tool, (m.group(1), float(m.group(3)) - float(m.group(2))))
    for dom, t in sorted(took.items()):
        if "xl" in t and "xenctx-swift" in t and t["xenctx-swift"][0] == "0":
            xl, ours = t["xl"][1], t["xenctx-swift"][1]
            print(f"TIME {dom}: --save-core {ours:.1f} s, xl dump-core {xl:.1f} s ({xl / ours:.1f}x)")

h = os.path.join(results, "host")
if os.path.exists(os.path.join(h, "swift-nolibs-live.err")):
    err = open(os.path.join(h, "swift-nolibs-live.err")).read()
    check("libraries are missing" in err and open(os.path.join(h, "swift-nolibs-live.rc")).read().strip() == "2",
          "without Xen's libraries, a live domain gets a clear error", err[:300])
    # The first saved core may be lab-crash-cpu1's, whose vCPU 0 Xen took down: any vCPU's registers will do.
    nolibs = open(os.path.join(h, "swift-nolibs-core.out")).read()
    check(open(os.path.join(h, "swift-nolibs-core.rc")).read().strip() in ("0", "1") and
          re.search(r"^vcpu\d+:$", nolibs, re.M) is not None and "rip: " in nolibs,
          "without Xen's libraries, --core still works", nolibs[:200])
check.finish()
