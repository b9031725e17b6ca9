#!/usr/bin/env python3
"""Hostile guest memory, timed: copies of a real core with kernel pages overwritten as a
guest could overwrite them, and the whole command's wall time and peak RSS on each.

usage: Benchmarks/hostile.py BIN CORE MAP OUTDIR [KIND...]
  BIN     the xenctx-swift binary (release build for figures)
  CORE    a complete core (x86-run10-pv612-crash-tasks for the x86 kinds,
          arm-tasks-a64-crash for btf-magic: its kallsyms names no __start_BTF, so BTF is
          found by its header)
  MAP     the guest's System.map (only to find where to write)
KINDs (default: the ones the core's map allows):
  osrelease   160 pages of .bss above vmcoreinfo_data filled with "OSRELEASE=A\\n" (every
              occurrence a VMCOREINFO candidate of up to 64 KiB; the search goes down from
              the image's end, so they come before vmcoreinfo_data's page; x86_64 PV only)
  btf-magic   64 KiB below __start_BTF filled with 16-byte BTF headers that claim 8 MiB
  kallsyms    1 MiB below the lowest kallsyms table filled with copies of the guest's own
              token table and index (a 5.10 core: its VMCOREINFO names no kallsyms, so
              they are found by content, from the image's start upwards)
  markers     the same 1 MiB: runs of u32 0, 512, 1024 (each a kallsyms_markers candidate)
              with one copy of the token table and index on top

Pages are found in the core file by their contents (read with BIN -m, which translates
through the guest's own page tables), so the script needs no knowledge of the core format.
Prints one line per kind: seconds, peak RSS, exit status, the first line of stderr.
"""
import json, os, struct, subprocess, sys, time

def words(binary, core, mp, addr, count):
    # -l counts lines of the dump, 32 bytes each
    r = subprocess.run([binary, "--core", core, "-s", mp, "-m", addr, "-l", str((count + 3) // 4)],
                       capture_output=True, text=True, check=True)
    ws = []
    for line in r.stdout.splitlines()[1:]:
        ws += [int(w, 16) for w in line.split()]
    return ws[:count]

def symbol(mp, name):
    with open(mp) as f:
        for line in f:
            p = line.split()
            if len(p) >= 3 and p[2] == name:
                return int(p[0], 16)
    raise SystemExit(f"{mp} has no {name}")

def symbol_or_none(mp, name):
    try:
        return symbol(mp, name)
    except SystemExit:
        return None

def page_bytes(binary, core, mp, va, pages):
    ws = words(binary, core, mp, format(va, "x"), pages * 512)
    b = b"".join(w.to_bytes(8, "little") for w in ws)
    return [b[i * 4096:(i + 1) * 4096] for i in range(pages)]

def locate(data, pages):
    """File offsets of each page, found by content (each must be unique in the file)."""
    out = []
    for i, p in enumerate(pages):
        if i and out[-1] is not None and data[out[-1] + 4096:out[-1] + 8192] == p:
            out.append(out[-1] + 4096)
            continue
        at = data.find(p)
        if at < 0 or data.find(p, at + 1) >= 0 or not p.strip(b"\0"):
            raise SystemExit(f"page {i} is not unique in the core (or all zeros): pick another region")
        out.append(at)
    return out

def pv_offsets(data, va, pages):
    """File offsets of an x86_64 PV kernel's image pages through the core's .xen_p2m (the
    image is mapped from pfn 0 at __START_KERNEL_map): for pages of zeros, which cannot be
    found by their contents."""
    shoff, = struct.unpack_from("<Q", data, 0x28)
    entsize, num, strndx = struct.unpack_from("<HHH", data, 0x3a)
    sh = lambda i: struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * entsize)
    names = sh(strndx)[4]
    secs = {}
    for i in range(num):
        h = sh(i)
        secs[data[names + h[0]:data.index(b"\0", names + h[0])].decode()] = (h[4], h[5])
    off, size = secs[".xen_p2m"]
    index = {struct.unpack_from("<Q", data, off + 16 * i)[0]: i for i in range(size // 16)}
    base = (va - 0xffffffff80000000) >> 12
    return [secs[".xen_pages"][0] + index[base + i] * 4096 for i in range(pages)]

def write_pages(core, out, offsets, fill):
    data = bytearray(open(core, "rb").read())
    for i, off in enumerate(offsets):
        data[off:off + 4096] = fill[i * 4096:(i + 1) * 4096]
    open(out, "wb").write(data)

def spawn_and_wait(binary, core, args):
    # posix_spawn + wait4: the child's own wall time and peak RSS
    t = time.monotonic()
    with open(os.devnull, "w") as out, open(core + ".stderr", "w") as err:
        pid = os.posix_spawn(binary, [binary, "--core", core] + args, os.environ,
                             file_actions=[(os.POSIX_SPAWN_DUP2, out.fileno(), 1), (os.POSIX_SPAWN_DUP2, err.fileno(), 2)])
        _, status, usage = os.wait4(pid, 0)
    dt = time.monotonic() - t
    first = open(core + ".stderr").readline().strip()
    return dt, usage.ru_maxrss // 1024, os.waitstatus_to_exitcode(status), first

class Runner:
    """Runs the binary from a small process started before any core is read: a child
    spawned from this one would inherit its peak RSS (the core it holds) through exec."""
    def __init__(self):
        self.p = subprocess.Popen([sys.executable, __file__, "--runner"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
    def __call__(self, binary, core, args):
        self.p.stdin.write(json.dumps([binary, core, args]) + "\n")
        self.p.stdin.flush()
        return tuple(json.loads(self.p.stdout.readline()))

def runner_loop():
    for line in sys.stdin:
        print(json.dumps(spawn_and_wait(*json.loads(line))), flush=True)

def main():
    if sys.argv[1:] == ["--runner"]:
        return runner_loop()
    run = Runner()
    binary, core, mp, outdir = sys.argv[1:5]
    kinds = sys.argv[5:] or ["osrelease", "kallsyms"]
    os.makedirs(outdir, exist_ok=True)
    data = open(core, "rb").read()
    for kind in kinds:
        out = os.path.join(outdir, f"hostile-{kind}.core")
        if kind == "osrelease":
            # .bss above vmcoreinfo_data: the search goes down from the image's end
            n, start = 160, (symbol(mp, "vmcoreinfo_data") & ~0xfff) + 4096
            fill = (b"OSRELEASE=A\n" * (n * 4096 // 12 + 1))[:n * 4096]
        elif kind == "btf-magic":
            n = 16
            start = (symbol(mp, "__start_BTF") & ~0xfff) - n * 4096
            rec = bytes([0x9f, 0xeb, 1, 0, 24, 0, 0, 0]) + (0).to_bytes(4, "little") + (8 << 20).to_bytes(4, "little")
            fill = rec * (n * 4096 // 16)
        elif kind in ("kallsyms", "markers"):
            n = 256
            table = symbol(mp, "kallsyms_token_table")
            lowest = min(a for a in (symbol_or_none(mp, "kallsyms_" + t) for t in
                         ("offsets", "addresses", "relative_base", "num_syms", "names", "markers", "token_table")) if a)
            start = (lowest & ~0xfff) - n * 4096
            ws = words(binary, core, mp, format(table, "x"), 512)
            tok = b"".join(w.to_bytes(8, "little") for w in ws)
            if kind == "kallsyms":
                fill = (tok * (n * 4096 // len(tok) + 1))[:n * 4096]
            else:
                runs = struct.pack("<III", 0, 512, 1024)
                fill = (runs * (n * 4096 // 12 + 1))[:n * 4096 - len(tok)] + tok
        else:
            raise SystemExit(f"unknown kind {kind}")
        if kind == "osrelease":
            offsets = pv_offsets(data, start, n)
        else:
            offsets = locate(data, page_bytes(binary, core, mp, start, n))
        write_pages(core, out, offsets, fill)
        for args in (["--describe", "-C"], ["--tasks"]):
            dt, rss, rc, first = run(binary, out, args)
            print(f"{kind:10} {' '.join(args):16} {dt:7.2f} s {rss:5} MiB exit {rc}  {first[:110]}")
        dt, rss, rc, _ = run(binary, core, ["--describe", "-C"])
        print(f"{'(as is)':10} {'--describe -C':16} {dt:7.2f} s {rss:5} MiB exit {rc}")

main()
