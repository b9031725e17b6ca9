#!/usr/bin/env python3
"""Checks a Scripts/lab-live-arm.sh results folder: xenctx-swift's live path in an arm64
Xen 4.20 dom0 beside upstream xenctx.

usage: compare-arm.py RESULTS_DIR [HOST_XENCTX_SWIFT]
RESULTS_DIR is results/latest (files/ holds dom0's /mnt/out). Prints one PASS/FAIL line per
check, INFO/TIME lines, and a closing 'N passed, M failed'; exits 1 on any failure.

Equality with upstream: on ARM upstream xenctx prints registers only (it defines
NO_TRANSLATION), so ours is compared after removing what it adds, as the corpus's
UpstreamEqualityTests do: the `Stack pointer:`, `Stack note:` and `Task:` lines, and each
vCPU block after its TTBR1 line (our stack and trace). With -s and -k upstream names any
address at or above -k with the nearest symbol; we name none outside [_text, _end]
(README, divergences): that is applied to upstream's text before comparing.
"""
import lzma, os, re, shutil, subprocess, sys, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from labcheck import Checks, image_bounds

results = sys.argv[1]
host_bin = sys.argv[2] if len(sys.argv) > 2 else None
files = os.path.join(results, "files")
check = Checks()


def read(p, default=None):
    try:
        return open(p, errors="replace").read()
    except OSError:
        return default

def first_diff(a, b, la="upstream", lb="ours"):
    a, b = a.split("\n"), b.split("\n")
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else "<end>"; y = b[i] if i < len(b) else "<end>"
        if x != y: return f"line {i+1}: {la} {x!r} / {lb} {y!r}"
    return ""

def xen_sections(core):
    """The file offset and size of each section of a Xen core, by name."""
    import struct
    with open(core, "rb") as f:
        h = f.read(64)
        shoff, = struct.unpack_from("<Q", h, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", h, 0x3a)
        f.seek(shoff); sh = f.read(shentsize * shnum)
        secs = [struct.unpack_from("<IIQQQQ", sh, i * shentsize) for i in range(shnum)]
        f.seek(secs[shstrndx][4]); names = f.read(secs[shstrndx][5])
    return {names[n:names.index(b"\0", n)].decode(): (off, size) for n, _, _, _, off, size in secs}

def words_at(core, mapfile, address):
    """The words of the first line of `-m ADDRESS` on the core (host build), each as its
    little-endian bytes (the guest's word size)."""
    r = subprocess.run([host_bin, "--core", core, "-s", mapfile, "-m", f"{address:x}", "0"], capture_output=True, text=True)
    line = r.stdout.split("\n")[1] if r.returncode == 0 and "\n" in r.stdout else ""
    return [bytes.fromhex(w)[::-1] for w in line.split()]

def differs_in_wallclock_only(core, cmp_text, mapfile):
    """Why two cores of one pause may differ: every byte `cmp -l` found (fewer than its 200-line
    cut) lies in the wallclock fields of the guest's shared_info page (wc_version, wc_sec,
    wc_nsec: offsets 0x430-0x43b on ARM), which Xen rewrites in every domain, paused or not,
    when dom0 sets the time. The page is shown to be the one the kernel maps as its shared
    info: its bytes there equal what HYPERVISOR_shared_info's target reads. None when not so."""
    rows = [l.split() for l in cmp_text.strip().split("\n") if l.strip()]
    if not rows or len(rows) >= 200 or not host_bin or not os.path.exists(core): return None
    pages_off, pages_size = xen_sections(core)[".xen_pages"]
    spots = set()
    for r in rows:
        o = int(r[0]) - 1 - pages_off
        if not (0 <= o < pages_size and 0x430 <= o % 4096 < 0x43c): return None
        spots.add(o // 4096)
    if len(spots) != 1: return None
    slot = spots.pop()
    sym = next((l.split()[0] for l in open(mapfile) if l.rstrip().endswith(" HYPERVISOR_shared_info")), None)
    if sym is None: return None
    ptr = words_at(core, mapfile, int(sym, 16))
    kernel_page = int.from_bytes(ptr[0], "little") if ptr else 0
    seen = b"".join(words_at(core, mapfile, kernel_page + 0x430))[:12] if kernel_page else b""
    with open(core, "rb") as f:
        f.seek(pages_off + slot * 4096 + 0x430); ours = f.read(12)
    if len(seen) != 12 or seen != ours: return None
    return (f"{len(rows)} byte(s) differ, all in the wallclock fields of the guest's shared_info page "
            f"(kernel address {kernel_page:x}; wc_version {rows[0][1]} in ours, {rows[0][2]} in the writer's, octal): "
            "Xen rewrites them in every domain, paused or not, when dom0 sets the time (do_settime)")

def is_header(line):
    return re.match(r"^vcpu\d+(:| offline)$", line) is not None

def without_additions(s):
    lines = [l for l in s.split("\n") if not l.startswith(("Stack pointer: ", "Stack note: ", "Task: "))]
    out, block = [], []
    def flush():
        nonlocal block
        if not block: return
        trailing = 0
        for l in reversed(block):
            if l == "": trailing += 1
            else: break
        idx = next((i for i, l in enumerate(block) if l.startswith("TTBR1:")), None)
        out.extend(block[:idx + 1] + [""] * trailing if idx is not None else block)
        block = []
    for l in lines:
        if is_header(l): flush()
        block.append(l)
    flush()
    return "\n".join(out)


def drop_symbols_outside_image(s, text, end):
    out = []
    for line in s.split("\n"):
        # `PC: ADDR sym+off` lines: upstream's only symbolised register on ARM
        m = re.match(r"^(\S+:\s+([0-9a-f]{8,16})) \S+$", line)
        if m and not (text <= int(m.group(2), 16) <= end): line = m.group(1)
        m = re.match(r"^(.*\[<([0-9a-f]+)>\]) (?!<--)(\S+)( <--)?$", line)
        if m and not (text <= int(m.group(2), 16) <= end): line = m.group(1) + (m.group(4) or "")
        out.append(line)
    return "\n".join(out)

def maps():
    m = {}
    for f in os.listdir(results):
        if f.startswith("System.map-"):
            m["a32" if "armmp" in f else "a64"] = os.path.join(results, f)
    return m

MAPS = maps()
KSTART = {"a64": "0xffff800000000000", "a32": "0xc0000000"}
UPSTREAM_SETS = ["xenctx", "xenctx-vcpu1", "xenctx-C", "xenctx-s-C", "xenctx-s-S-f-a-C", "xenctx-s-k-a-C", "xenctx-k-C"]

def console_frames(console):
    """The function names of the kernel's own backtrace of its (last) panic, from `panic` on:
    arm64 prints ` func+0x../0x..` lines after `Call trace:`, ARM32 (6.1) ` A from B+0x../0x..`."""
    lines = console.split("\n")
    found = []
    i = 0
    while i < len(lines):
        seq = []
        if "Call trace:" in lines[i]:                                   # arm64
            j = i + 1
            while j < len(lines):
                mm = re.match(r"^\[\s*[0-9.]+\]\s+(\S+?)\+0x[0-9a-f]+/0x[0-9a-f]+", lines[j])
                if not mm: break
                seq.append(mm.group(1)); j += 1
            i = j
        elif re.match(r"^\[\s*[0-9.]+\]\s+\S+ from \S+\+0x[0-9a-f]+/0x[0-9a-f]+", lines[i]):   # ARM32
            j = i
            while j < len(lines):
                mm = re.match(r"^\[\s*[0-9.]+\]\s+(\S+) from (\S+?)\+0x[0-9a-f]+/0x[0-9a-f]+", lines[j])
                if not mm: break
                if not seq: seq.append(mm.group(1))
                seq.append(mm.group(2)); j += 1
            i = j
        else:
            i += 1
        if "panic" in seq: found.append(seq[seq.index("panic"):])
    return found[-1] if found else []

def our_traces(text):
    """Per vCPU block, the function names of its Call Trace, in order."""
    out = []
    for block in re.split(r"\n(?=vcpu\d+:\n)", text):
        m = re.search(r"\nCall Trace:\n(.*?)(?:\n\n|\Z)", block, re.S)
        if not m: continue
        names = re.findall(r"\[<[0-9a-f]+>\] (?:\? )?([A-Za-z0-9_.$]+?)(?:\+0x[0-9a-f]+)?(?: |$)", m.group(1), re.M)
        out.append(names)
    return out

def subsequence(want, have):
    it = iter(have)
    return all(any(w == h for h in it) for w in want)

def unxz(p, tmp):
    out = os.path.join(tmp, os.path.basename(p)[:-3])
    with lzma.open(p) as src, open(out, "wb") as dst: shutil.copyfileobj(src, dst)
    return out

tmp = tempfile.mkdtemp(prefix="compare-arm-")
tags = sorted(d[:-6] for d in os.listdir(files) if d.endswith(".swift") and d != "host.swift" and os.path.isdir(os.path.join(files, d)))
print(f"INFO guests inspected: {' '.join(tags)}")
print(f"INFO tool: {(read(os.path.join(results, 'tool-source.txt'), '') or '').strip().splitlines()[:1]}")
for tag in tags:
    D = os.path.join(files, tag + ".swift")
    arch = "a32" if tag.startswith("a32") else "a64"
    mapfile = MAPS[arch]
    text, end = image_bounds(mapfile)
    # 1. every upstream option set: registers and format
    for n in UPSTREAM_SETS:
        up = read(os.path.join(files, f"{tag}.{n}.txt"))
        if up is None: check(False, f"{tag} {n}: no upstream output"); continue
        up_err = read(os.path.join(files, f"{tag}.{n}.err"), "")
        up_rc = (re.findall(r"rc=(\d+)", up_err) or ["?"])[-1]
        ours_raw = read(os.path.join(D, n + ".out"))
        if ours_raw is None: check(False, f"{tag} {n}: xenctx-swift did not run"); continue
        rc = read(os.path.join(D, n + ".rc"), "?").strip()
        ours = without_additions(ours_raw)
        cmd = read(os.path.join(D, n + ".cmd"), "")
        expect = drop_symbols_outside_image(up, text, end) if (" -k " in cmd and " -s " in cmd) else up
        ours_err = read(os.path.join(D, n + ".err"), "")
        if ours == expect and rc != up_rc and up_rc == "0" and rc == "2" and ours.strip() == "" \
                and "xc_vcpu_getcontext" in up_err and "is not here" in ours_err:
            # divergence: a vCPU the domain does not have; upstream prints libxc's error and
            # exits 0, ours says so and exits 2
            check(True, f"{tag} {n}: no such vCPU: both print nothing; upstream exits 0 after libxc's error, ours 2 (divergence)")
            continue
        if ours == expect and up_rc == "0" and rc == "1" and " -f " in cmd and "frame-pointer walk:" in ours_err:
            # divergence: on ARM upstream walks no stack at all (NO_TRANSLATION); our -f walk
            # stopped at a frame pointer that is not one, said so on stderr and exits 1
            check(True, f"{tag} {n}: live output equals upstream's; ours warns that its -f walk stopped (rc 1; divergence: upstream walks nothing on ARM)")
            continue
        check(ours == expect and rc == up_rc, f"{tag} {n}: live output equals upstream's (rc {up_rc}/{rc})",
              first_diff(expect, ours) + (f" stderr: {read(os.path.join(D, n + '.err'), '')[:200]!r}" if rc != up_rc else ""))
    # 2. own views ran
    views = ["own-C", "own-summary", "own-tasks", "own-log", "own-s-C", "describe"]
    if arch == "a32":
        # Debian's armmp kernel has no BTF: --tasks says to give --vmlinux (README); the
        # -dbg vmlinux's DWARF gives the list
        err = read(os.path.join(D, "own-tasks.err"), "")
        check("give --vmlinux" in err, f"{tag} own-tasks: without BTF, says to give --vmlinux", err[:200])
        views = [v if v != "own-tasks" else "own-tasks-vmlinux" for v in views]
    # A guest that oopsed by itself (the 32-bit guests under Xen-on-TCG, REPORT.md) may have
    # overwritten kernel memory: there the task list must stop where a task is not one and
    # say so (exit 1), not list on; the oopses are counted from the guest's own log.
    oopses = len(re.findall(r"Internal error: Oops|Unable to handle kernel", read(os.path.join(D, "own-log.out"), "") or ""))
    if oopses:
        print(f"INFO {tag}: the guest's own log (--log) holds {oopses} oops lines (Internal error / Unable to handle kernel)")
    for n in views:
        rc = read(os.path.join(D, n + ".rc"), "?").strip()
        out = read(os.path.join(D, n + ".out"), "")
        err = read(os.path.join(D, n + ".err"), "") or ""
        if n.startswith("own-tasks") and oopses and rc == "1" and "task list: task at " in err:
            check(out.strip() != "", f"{tag} {n}: rc 1 on an oopsed guest: the task list stops and says where "
                  f"({err.strip().splitlines()[0][:160]})")
            continue
        check(rc in ("0",) and out.strip() != "", f"{tag} {n}: rc {rc}, {len(out.splitlines())} lines", err[:300])
    # 3. the crashed guest's trace is the console's (from panic on; the kernel names the
    #    return address after panic's call by the next function, sysrq_reset_seq_param_set,
    #    where ours names the call site, sysrq_handle_crash: README)
    console = read(os.path.join(files, f"{tag}.console.log"), "")
    frames = console_frames(console)
    if frames:
        want = ["sysrq_handle_crash" if f == "sysrq_reset_seq_param_set" else f for f in frames]
        ours = our_traces(read(os.path.join(D, "own-C.out"), ""))
        ok = any(subsequence(want, t) for t in ours)
        check(ok, f"{tag}: the console's panic backtrace ({len(want)} frames from panic) is in the live -C trace",
              f"console: {want} / ours: {ours}")
    else:
        print(f"INFO {tag}: no panic backtrace in the console (not a crash guest, or it oopsed without one)")
    # 4. --save-core, read back in dom0 and on the host
    core = os.path.join(files, tag + ".swift.core")
    if not os.path.exists(core) and os.path.exists(core + ".xz"): core = unxz(core + ".xz", tmp)
    src = read(os.path.join(D, "save-core.rc"), "?").strip()
    check(src == "0" and os.path.exists(core), f"{tag}: --save-core rc {src} ({os.path.getsize(core) if os.path.exists(core) else 0} bytes)",
          read(os.path.join(D, "save-core.err"), "")[:300])
    for view in ["C", "summary", "log", "s-C"] + (["tasks-vmlinux"] if arch == "a32" else ["tasks"]):
        live = read(os.path.join(D, f"own-{view}.out"))
        back = read(os.path.join(D, f"core-{view}.out"))
        if live is None or back is None: check(False, f"{tag} {view}: missing live or read-back output"); continue
        brc = read(os.path.join(D, f"core-{view}.rc"), "?").strip()
        check(live == back and live.strip() != "" and brc == read(os.path.join(D, f"own-{view}.rc"), "?").strip(),
              f"{tag} {view}: --core of the saved core (dom0) equals the live report (rc {brc})", first_diff(live, back, "live", "core"))
    again = read(os.path.join(D, "save-core-again.rc"), "?").strip()
    check(src == "0" and again not in ("0", "?", "126", "127") and "exists" in read(os.path.join(D, "save-core-again.err"), ""), f"{tag}: a second --save-core to the same file is refused (rc {again})",
          read(os.path.join(D, "save-core-again.err"), "")[:200])
    # 4b. the complete-core writer's core of the same pause, compared in dom0
    frc = read(os.path.join(D, "fullcore.rc"))
    if frc is not None:
        crc = read(os.path.join(D, "fullcore-cmp.rc"), "?").strip()
        why = differs_in_wallclock_only(core, read(os.path.join(D, "fullcore-cmp.txt"), ""), mapfile) if crc == "1" else None
        if why: print(f"INFO {tag}: the two cores of one pause: {why}")
        check(frc.strip() == "0" and (crc == "0" or why is not None),
              f"{tag}: --save-core equals the complete-core writer's core of the same pause, byte for byte"
              f"{' but for what Xen rewrote between the two' if why else ''} (writer rc {frc.strip()}, cmp rc {crc})",
              (read(os.path.join(D, "fullcore-sizes.txt"), "") + read(os.path.join(D, "fullcore-cmp.txt"), "")[:400]
               + read(os.path.join(D, "fullcore.err"), "")[:300]))
    if host_bin and os.path.exists(core):
        vml = os.path.join(os.path.expanduser("~/.cache/xenlab/arm/x/dbg/usr/lib/debug/boot"), "vmlinux-6.1.0-50-armmp-lpae")
        host_views = [("C", ["-C"]), ("summary", ["--summary"]), ("tasks", ["--tasks"]), ("log", ["--log"]), ("s-C", ["-s", mapfile, "-C"])]
        if arch == "a32" and os.path.exists(os.environ.get("VMLINUX_ARMHF", vml)):
            host_views.append(("tasks-vmlinux", ["--vmlinux", os.environ.get("VMLINUX_ARMHF", vml), "--tasks"]))
        for view, args in host_views:
            r = subprocess.run([host_bin, "--core", core] + args, capture_output=True, text=True, errors="replace")
            live = read(os.path.join(D, f"own-{view}.out"), "")
            check(r.stdout == live and r.returncode == int(read(os.path.join(D, f"own-{view}.rc"), "-1").strip() or -1),
                  f"{tag} {view}: host amd64 build on the core equals dom0's live arm64 output (rc {r.returncode})",
                  first_diff(live, r.stdout, "dom0-live", "host") + " " + r.stderr[:200])
    # xl dump-core beside --save-core
    t_ours = read(os.path.join(D, "save-core.ms")); t_xl = read(os.path.join(D, "xl-dump-core.ms"))
    if t_ours and t_xl:
        print(f"TIME {tag}: --save-core {int(t_ours)/1000:.1f} s ({os.path.getsize(core) if os.path.exists(core) else 0} bytes), "
              f"xl dump-core {int(t_xl)/1000:.1f} s ({os.path.getsize(os.path.join(files, tag + '.core')) if os.path.exists(os.path.join(files, tag + '.core')) else '?'} bytes)")
    # 5. signals while the pause is held (running guests only)
    for sig, signo in (("INT", 2), ("TERM", 15), ("HUP", 1)):
        during = os.path.join(D, f"sig{sig}-during.txt")
        if not os.path.exists(during): continue
        rc = read(os.path.join(D, f"sig{sig}.rc"), "?").strip()
        check(rc == str(128 + signo), f"{tag}: SIG{sig} ends the run (rc {rc})")
        state = lambda p: (read(p, "") or "").strip().split("\n")[-1].split()[4] if len((read(p, "") or "").strip().split("\n")[-1].split()) > 4 else "?"
        s_during, s_after = state(during), state(os.path.join(D, f"sig{sig}-after.txt"))
        check("p" in s_during and "p" not in s_after and s_after != "?",
              f"{tag}: SIG{sig} while paused: state {s_during} during, {s_after} after")
    # 6. pause windows
    windows = os.path.join(D, "pause-windows.txt")
    if os.path.exists(windows):
        vals = {}
        for line in open(windows):
            p = line.split()
            if len(p) == 2: vals.setdefault(p[0], []).append(float(p[1]))
        med = {k: sorted(v)[len(v) // 2] for k, v in vals.items()}
        up, ours = med.get("upstream-run-ms"), med.get("swift-pause-ms")
        print(f"INFO {tag}: pause windows, all runs: " + "; ".join(f"{k}: {' '.join(str(int(x)) if x == int(x) else str(x) for x in v)}" for k, v in vals.items()))
        desc = read(os.path.join(D, "live-describe.out"), "") or ""
        paused = next((l for l in desc.split("\n") if "was paused for" in l), None)
        if paused: print(f"INFO {tag}: {paused.lstrip('# ')}")
        check(up is not None and ours is not None and ours * 20 <= up,
              f"{tag}: pause window, medians of {len(vals.get('swift-pause-ms', []))} runs: xenctx-swift {ours} ms"
              f" (no map: {med.get('swift-nomap-pause-ms')} ms; its whole run {med.get('swift-nomap-run-ms')} ms) vs upstream's whole run {up} ms (goal: 1/20 or less)")
    la = os.path.join(D, "live-after.txt")
    if os.path.exists(la):
        st = (read(la, "") or "").strip().split("\n")[-1].split()
        check(len(st) > 4 and "p" not in st[4], f"{tag}: running after the pause-window runs (state {st[4] if len(st) > 4 else '?'})")

H = os.path.join(files, "host.swift")
if os.path.isdir(H):
    err = read(os.path.join(H, "nolibs-live.err"), "")
    rc = read(os.path.join(H, "nolibs-live.rc"), "?").strip()
    check("libraries are missing" in err and rc not in ("0", "?"), f"without Xen's libraries, a live domain gets a clear error (rc {rc})", err[:300])
    rc = read(os.path.join(H, "nolibs-core.rc"), "?").strip()
    check(rc in ("0", "1") and "vcpu0:" in read(os.path.join(H, "nolibs-core.out"), ""),
          f"without Xen's libraries, --core still works (rc {rc}, core {read(os.path.join(H, 'nolibs-core-name.txt'), '').strip()})")
else:
    check(False, "no no-libs run (host.swift missing)")
shutil.rmtree(tmp, ignore_errors=True)
check.finish()
