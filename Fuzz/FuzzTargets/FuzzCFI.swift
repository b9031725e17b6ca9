#if canImport(Glibc)
import Glibc
#endif
import ELFSymbols
import VCPUContext

extension FuzzTargets {
    /// DWARF CFI as `--unwind cfi` uses it: an ELF's .debug_frame/.eh_frame through libdwfl's
    /// unwinder (our bridge feeds it registers and guest memory), and the bridge's own DWARF
    /// walks (source lines, struct sizes, member paths, array shapes). Input: [u8 register
    /// count][32 × u64 registers in DWARF numbering][u64 pc][u64 stack address][u16 stack
    /// length][stack][the ELF]; seeds (Fuzz/seeds/cfi, Fuzz/cfi/make-seeds.py) stop a CPU in
    /// a real leaf function of an x86_64, aarch64 or ARMv7 build, three callers deep.
    static func cfi(_ data: UnsafeRawBufferPointer) {
        var h = FuzzHeader(data)
        let count = Int(h.u8() % 33)
        let registers = (0..<32).map { _ in h.u64() }
        let pc = h.u64(), stackAt = h.u64() & ~0xfff
        let stack = h.take(Int(h.u16() % 8193))
        let image = h.rest
        guard image.count >= 64, image.starts(with: [0x7f, 0x45, 0x4c, 0x46]) else { return }
        let width = image[4] == 1 ? 4 : 8
        let path = "/tmp/xenctx-fuzz-cfi-\(getpid())"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return }
        let written = write(fd, image.baseAddress, image.count)
        close(fd)
        defer { unlink(path) }
        guard written == image.count, let elf = try? ELFFile(path: path) else { return }
        let memory = GuestMemory(frames: FuzzMemory(stack, firstFrame: stackAt >> 12), translation: .identity)
        _ = elf.unwindCFI(registers: Array(registers.prefix(count)), pc: pc, maxFrames: 64) { try? memory.word($0, width: width) }
        _ = elf.frames(at: pc)
        _ = elf.structSize("task_struct")
        for member in ["thread.sp", "pid", "lo", "tasks.next", "comm"] { _ = elf.memberOffset(member, in: "task_struct") }
        _ = elf.arrayShape("comm", in: "task_struct")
    }
}
