#!/usr/bin/env python3
"""Seeds for the cfi fuzz target (Fuzz/seeds/cfi/*.seed), from Fuzz/cfi/cfi.c.

cfi.c is built with the Swift toolchain's clang and ld.lld for x86_64 (.debug_frame, and
.eh_frame), aarch64 and armv7-a (.debug_frame): leaf() spins in a loop called from middle(),
outer() and _start(). Each seed is the input the target takes: the registers and pc of a CPU
stopped in leaf's loop and the stack those three callers left, then the ELF itself. The
return addresses are read from the disassembly (the instruction after each call); the frame
shapes are what each build's CFI says (llvm-dwarfdump --debug-frame), written out below, and
`FuzzSeedTests.cfiSeedsUnwindToStart` checks that libdwfl unwinds each seed to _start.

  python3 Fuzz/cfi/make-seeds.py      # rewrites Fuzz/seeds/cfi/*.seed
"""
import os, re, struct, subprocess, sys, tempfile

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
tool = os.path.dirname(os.path.realpath(subprocess.check_output(["sh", "-c", "command -v swiftc"], text=True).strip()))
clang, objdump, nm = (os.path.join(tool, t) for t in ("clang", "llvm-objdump", "llvm-nm"))

def build(name, target, extra):
    out = os.path.join(scratch, f"cfi-{name}.elf")
    subprocess.check_call([clang, f"--target={target}", "-O2", "-ffreestanding", "-fno-pie", "-nostdlib", "-static",
                           "-fuse-ld=lld", "-Wl,--build-id=none", *extra, "-o", out, os.path.join(here, "cfi.c")])
    return out

def symbols(elf):
    return {l.split()[2]: int(l.split()[0], 16) for l in subprocess.check_output([nm, elf], text=True).splitlines() if len(l.split()) == 3}

def after_call(elf, caller, callee):
    """The address of the instruction after `caller`'s call of `callee`: its return address."""
    lines = subprocess.check_output([objdump, "-d", "--no-show-raw-insn", f"--disassemble-symbols={caller}", elf], text=True).splitlines()
    insns = [l for l in lines if re.match(r"^\s+[0-9a-f]+:", l)]
    for i, l in enumerate(insns):
        if f"<{callee}>" in l and re.search(r"\b(call|callq|bl)\b", l):
            return int(insns[i + 1].split(":")[0], 16)
    sys.exit(f"{elf}: no call of {callee} in {caller}")

def loop_pc(elf):
    """leaf's loop head: the target of its backward branch."""
    lines = subprocess.check_output([objdump, "-d", "--no-show-raw-insn", "--disassemble-symbols=leaf", elf], text=True).splitlines()
    for l in lines:
        m = re.search(r"\b(jne|b\.ne|bne)\s+0x([0-9a-f]+)", l)
        if m: return int(m.group(2), 16)
    sys.exit(f"{elf}: no loop in leaf")

def seed(name, elf, regs, pc, stack_at, words, width):
    stack = b"".join(struct.pack("<Q" if width == 8 else "<I", w) for w in words)
    regs = regs + [0] * (32 - len(regs))
    header = struct.pack("<B", nregs[name]) + b"".join(struct.pack("<Q", r) for r in regs) + struct.pack("<QQH", pc, stack_at, len(stack))
    with open(os.path.join(root, "Fuzz/seeds/cfi", f"{name}.seed"), "wb") as f:
        f.write(header + stack + open(elf, "rb").read())

scratch = tempfile.mkdtemp()
nregs = {"x86_64": 16, "x86_64-eh": 16, "aarch64": 32, "armv7a": 16}
S = 0x7ff0_0000
os.makedirs(os.path.join(root, "Fuzz/seeds/cfi"), exist_ok=True)
for name, target, extra in (("x86_64", "x86_64-linux-gnu", ["-g"]), ("x86_64-eh", "x86_64-linux-gnu", ["-fasynchronous-unwind-tables"]),
                            ("aarch64", "aarch64-linux-gnu", ["-g"]), ("armv7a", "armv7a-linux-gnueabihf", ["-g"])):
    elf = build(name, target, extra)
    ra = [after_call(elf, "middle", "leaf"), after_call(elf, "outer", "middle"), after_call(elf, "_start", "outer")]
    pc = loop_pc(elf)
    if name.startswith("x86_64"):
        # leaf: CFA=rsp+8, ra at [rsp]; middle, outer: push rbx, CFA=rsp+16; _start: push rax.
        words = [ra[0], 0x1111, ra[1], 0x2222, ra[2], 0x3333, 0]
        regs = [0] * 16
        regs[7] = S
        seed(name, elf, regs, pc, S, words, 8)
    elif name == "aarch64":
        # leaf: CFA=sp+32, ra in x30; middle, outer: CFA=x29+32, x29 [CFA-32], x30 [CFA-24],
        # x19 [CFA-16]; _start: CFA=x29+16, x29 [CFA-16], x30 [CFA-8].
        words = [0] * 4 + [S + 64, ra[1], 0x1919, 0] + [S + 96, ra[2], 0x1919, 0] + [0, 0]
        regs = [0] * 32
        regs[29], regs[30], regs[31] = S + 32, ra[0], S
        seed(name, elf, regs, pc, S, words, 8)
    else:
        # leaf: CFA=sp+16, ra in lr; middle, outer: push {r4, lr}: CFA=sp+8, lr [CFA-4].
        words = [0] * 4 + [0x4444, ra[1], 0x4444, ra[2]]
        regs = [0] * 16
        regs[13], regs[14], regs[15] = S, ra[0], pc
        seed(name, elf, regs, pc, S, words, 4)
    print(f"{name}: pc {pc:#x}, return addresses {', '.join(hex(a) for a in ra)}")
