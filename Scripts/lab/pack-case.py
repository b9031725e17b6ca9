#!/usr/bin/env python3
"""Packs one domain of a lab-check results folder into a corpus case whose core is the
one xenctx-swift --save-core wrote, next to upstream xenctx's outputs of the same paused
moment. usage: pack-case.py RESULTS_DIR DOMAIN CASE_NAME CORPUS_DIR [KERNEL ARCH]
(KERNEL and ARCH for a guest whose kernel is not the run's: a 32-bit guest, 6.1.0-50-686-pae x86)"""
import json, lzma, os, re, shutil, subprocess, sys

results, domain, name, corpus = sys.argv[1:5]
kernel_arg, arch = (sys.argv[5], sys.argv[6]) if len(sys.argv) > 6 else (None, "x64")
d = os.path.join(results, domain)
out = os.path.join(corpus, "cases", name)
os.makedirs(os.path.join(out, "upstream"), exist_ok=True)
kver = kernel_arg or open(os.path.join(results, "kver.txt")).read().strip()
runs = []
for f in sorted(os.listdir(d)):
    if not (f.startswith("xenctx") and f.endswith(".cmd")) or "after-dump" in f: continue
    n = f[:-4]
    argv = open(os.path.join(d, f)).read().split()[1:]
    domid = open(os.path.join(d, "domid.txt")).read().strip()
    args = ["{map}" if re.search(r"System\.map\d*$", a) else a for a in argv]
    # The domain is the last argument, or the one before a vCPU number.
    at = len(args) - 1 if args[-1] == domid else len(args) - 2
    assert args[at] == domid, f"{f}: no domid in {argv}"
    args[at] = "{domid}"
    shutil.copy(os.path.join(d, n + ".out"), os.path.join(out, "upstream", n + ".txt"))
    runs.append({"args": args, "stdout": f"upstream/{n}.txt"})
core = os.path.join(d, domain + ".swift.core")
subprocess.run(["xz", "-T2", "-6", "-k", "-c", core], stdout=open(os.path.join(out, name + ".core.xz"), "wb"), check=True)
console = os.path.join(results, "console", f"guest-{domain}.log")
shutil.copy(console, os.path.join(out, "console.log"))
json.dump({"name": name, "arch": arch, "xen": open(os.path.join(results, "debs.txt")).read().split("xen-hypervisor-4.17-amd64_")[1].split("_")[0] + " (Debian bookworm amd64), QEMU q35 qemu64 TCG",
           "kernel": kver, "core": name + ".core.xz", "upstream": runs, "map": "System.map.xz", "console": "console.log",
           "has_ram": True, "core_writer": "xenctx-swift --save-core (libxenctrl's writer, with Xen's live vCPU online state recorded) in the lab's dom0, on the paused domain"},
          open(os.path.join(out, "case.json"), "w"), indent=1)
open(os.path.join(out, "kernel"), "w").write(kver + "\n")
print(f"packed {len(runs)} upstream runs into {out}")
