import VCPUContext

/// The guest's own clocks at its last timekeeping update (a tick before the dump at most):
/// wall-clock time (CLOCK_REALTIME) and time since boot (CLOCK_BOOTTIME), from the kernel's
/// timekeeper, `tk_core.timekeeper` (timekeeping.c). Its members' offsets come from the
/// kernel's types; where `tk_core`'s own (anonymous) struct puts the timekeeper is decided
/// from the types too (`struct tk_data` where the kernel names it; before, after a
/// `seqcount_raw_spinlock_t`, aligned to 8), and the values read are checked for the
/// timekeeper's shape (a clocksource pointer, a shift below 32, times in order) before use.
public struct GuestClock: Sendable, Equatable {
    /// CLOCK_REALTIME, nanoseconds since 1970 (UTC).
    public let realtime: UInt64
    /// CLOCK_BOOTTIME: nanoseconds since boot, suspend included (what dmesg -T counts from).
    public let boottime: UInt64
    /// Where the values came from.
    public let source: String

    /// Wall-clock time of the boot: what `dmesg -T` adds each record's timestamp to.
    public var bootRealtime: UInt64 { realtime &- min(realtime, boottime) }

    public static func read(reader: KernelReader, types: any KernelTypes, symbol: (String) -> UInt64?) -> Result<GuestClock, KernelDataError> {
        func fail(_ why: String) -> Result<GuestClock, KernelDataError> { .failure(KernelDataError("clock", why)) }
        guard let tkCore = symbol("tk_core") else { return fail("tk_core is not in the symbols (a kallsyms without data symbols, as arm64's; give -s System.map)") }
        let inCore: Int
        if let o = types.offset(of: "timekeeper", in: "tk_data") {
            inCore = o
        } else if let seq = types.size(of: "seqcount_raw_spinlock"), (0...256).contains(seq) {
            inCore = (seq + 7) & ~7
        } else {
            return fail("the kernel's types name neither struct tk_data nor struct seqcount_raw_spinlock")
        }
        let names = ["xtime_sec", "tkr_mono.clock", "tkr_mono.shift", "tkr_mono.xtime_nsec", "wall_to_monotonic.tv_sec",
                     "wall_to_monotonic.tv_nsec", "offs_boot"]
        var at: [String: UInt64] = [:]
        for n in names {
            guard let o = types.offset(of: n, in: "timekeeper") else { return fail("struct timekeeper has no \(n) in the kernel's types") }
            at[n] = tkCore &+ UInt64(inCore) &+ UInt64(o)
        }
        do {
            let sec = try reader.u64(at["xtime_sec"]!)
            let clock = try reader.word(at["tkr_mono.clock"]!)
            let shift = try reader.u32(at["tkr_mono.shift"]!)
            let shiftedNsec = try reader.u64(at["tkr_mono.xtime_nsec"]!)
            let w2mSec = Int64(bitPattern: try reader.u64(at["wall_to_monotonic.tv_sec"]!))
            let w2mNsec = reader.wordSize == 8 ? Int64(bitPattern: try reader.u64(at["wall_to_monotonic.tv_nsec"]!))
                                               : Int64(Int32(bitPattern: try reader.u32(at["wall_to_monotonic.tv_nsec"]!)))
            let offsBoot = Int64(bitPattern: try reader.u64(at["offs_boot"]!))
            // The timekeeper's shape: a clocksource in the kernel's half, a shift a clocksource
            // uses, sub-second nanoseconds, realtime ≥ monotonic ≥ 0, boot offset ≥ 0.
            let kernelHalf: UInt64 = reader.wordSize == 8 ? 0xffff_0000_0000_0000 : 0x8000_0000
            let nsec = shift < 32 ? shiftedNsec >> shift : .max
            guard clock >= kernelHalf, shift < 32, nsec < 1_000_000_000, sec < 1 << 34, w2mSec <= 0, -w2mSec <= Int64(sec),
                  (0..<1_000_000_000).contains(w2mNsec), offsBoot >= 0 else {
                return fail("tk_core at \(hex(tkCore)) does not hold a timekeeper's values (xtime_sec \(sec), clock \(hex(clock)), shift \(shift))")
            }
            let realtime = sec &* 1_000_000_000 &+ nsec
            let monotonic = Int64(realtime) + w2mSec * 1_000_000_000 + w2mNsec
            guard monotonic >= 0 else { return fail("tk_core at \(hex(tkCore)): monotonic time before boot") }
            return .success(GuestClock(realtime: realtime, boottime: UInt64(monotonic) &+ UInt64(offsBoot),
                                       source: "tk_core.timekeeper at \(hex(tkCore &+ UInt64(inCore))), types from \(types.source)"))
        } catch {
            return fail("tk_core at \(hex(tkCore)): \(error)")
        }
    }
}
