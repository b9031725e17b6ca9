#!/usr/bin/env python3
"""Packs one domain of a lab-check results folder into a corpus case whose core is the
one xenctx-swift --save-core wrote (or, with --xl-core, the one `xl dump-core` wrote, when it
finished), next to upstream xenctx's outputs of the same paused moment.
usage: pack-case.py [--xl-core] RESULTS_DIR DOMAIN CASE_NAME CORPUS_DIR [KERNEL ARCH]
(KERNEL and ARCH for a guest whose kernel is not the run's: a 32-bit guest, 6.1.0-50-686 x86)
The console is the guest's serial port when the device model wrote one (HVM: it holds the
boot before the PV console is up), else its PV console as xenconsoled logged it."""
import json, lzma, os, re, shutil, subprocess, sys

argv = sys.argv[1:]
xl_core = "--xl-core" in argv
argv = [a for a in argv if a != "--xl-core"]
results, domain, name, corpus = argv[0:4]
kernel_arg, arch = (argv[4], argv[5]) if len(argv) > 5 else (None, "x64")
d = os.path.join(results, domain)
out = os.path.join(corpus, "cases", name)
os.makedirs(os.path.join(out, "upstream"), exist_ok=True)
kver = kernel_arg or open(os.path.join(results, "kver.txt")).read().strip()
runs = []
for f in sorted(os.listdir(d)):
    if not (f.startswith("xenctx") and f.endswith(".cmd")) or "after-dump" in f: continue
    n = f[:-4]
    rc_file = os.path.join(d, n + ".rc")
    if os.path.exists(rc_file) and open(rc_file).read().strip() == "124":
        print(f"skipped {n}: upstream was killed by the lab's timeout (its output is cut short)")
        continue
    argv = open(os.path.join(d, f)).read().split()[1:]
    domid = open(os.path.join(d, "domid.txt")).read().strip()
    args = ["{map}" if re.search(r"System\.map\d*$", a) else a for a in argv]
    # The domain is the last argument, or the one before the vCPU number of a per-vCPU run
    # (named ...-vcpuN by the scenario; domain 1's vCPU 1 looks like a domain otherwise).
    at = len(args) - 2 if re.search(r"-vcpu\d+$", n) else len(args) - 1
    assert args[at] == domid, f"{f}: no domid in {argv}"
    args[at] = "{domid}"
    shutil.copy(os.path.join(d, n + ".out"), os.path.join(out, "upstream", n + ".txt"))
    runs.append({"args": args, "stdout": f"upstream/{n}.txt"})
core = os.path.join(d, domain + ".swift.core")
writer = "xenctx-swift --save-core (libxenctrl's writer, with Xen's live vCPU online state recorded) in the lab's dom0, on the paused domain"
if xl_core:
    rc = open(os.path.join(d, "xl-dump-core.rc")).read().strip()
    assert rc == "0", f"xl dump-core did not finish (rc {rc})"
    core = os.path.join(d, domain + ".core")
    writer = "xl dump-core in the lab's dom0, on the paused domain"
subprocess.run(["xz", "-T2", "-6", "-k", "-c", core], stdout=open(os.path.join(out, name + ".core.xz"), "wb"), check=True)
console = os.path.join(results, "console", f"serial-{domain}.log")
if not os.path.exists(console) or os.path.getsize(console) == 0:
    console = os.path.join(results, "console", f"guest-{domain}.log")
shutil.copy(console, os.path.join(out, "console.log"))
hvmctx = os.path.join(d, "xen-hvmctx.out")
if os.path.exists(hvmctx) and os.path.getsize(hvmctx) > 0:
    shutil.copy(hvmctx, os.path.join(out, "xen-hvmctx.txt"))
json.dump({"name": name, "arch": arch, "xen": open(os.path.join(results, "debs.txt")).read().split("xen-hypervisor-4.17-amd64_")[1].split("_")[0] + " (Debian bookworm amd64), QEMU q35 qemu64 TCG",
           "kernel": kver, "core": name + ".core.xz", "upstream": runs, "map": "System.map.xz", "console": "console.log",
           "has_ram": True, "core_writer": writer},
          open(os.path.join(out, "case.json"), "w"), indent=1)
open(os.path.join(out, "kernel"), "w").write(kver + "\n")
print(f"packed {len(runs)} upstream runs into {out}")
