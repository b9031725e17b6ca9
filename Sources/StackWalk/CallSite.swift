import VCPUContext

/// Whether the instruction before a return address is a call. A return address right after
/// a call to a noreturn function (`bl panic`, the last instruction of its caller) is the
/// first instruction of the *next* function: the call site is at address - 1, as the
/// kernel's `%pB` assumes. ARM entry code also sets LR by hand (`badr lr, ret_fast_syscall`),
/// where address - 1 would be wrong: there the instruction before is no call.
public enum CallSite {
    /// ARM32 (ARM state) and AArch64; nil when the word cannot be read.
    public static func precededByCall(_ address: UInt64, wordSize: Int, memory: some StackMemory) -> Bool? {
        guard address >= 4, address % 4 == 0, let insn = try? memory.word(address &- 4, width: 4) else { return nil }
        let i = UInt32(truncatingIfNeeded: insn)
        if wordSize == 8 {
            return i & 0xfc00_0000 == 0x9400_0000         // BL
                || i & 0xffff_fc1f == 0xd63f_0000         // BLR
                || i & 0xfeff_f800 == 0xd63f_0800         // BLRAA/BLRAB/BLRAAZ/BLRABZ
        }
        return (i >> 28 != 0xf && i & 0x0f00_0000 == 0x0b00_0000)   // BL
            || i & 0xfe00_0000 == 0xfa00_0000                      // BLX (immediate)
            || i & 0x0fff_fff0 == 0x012f_ff30                      // BLX (register)
    }
}
