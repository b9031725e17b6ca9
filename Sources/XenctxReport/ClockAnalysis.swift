import GuestKernel
#if canImport(Glibc)
import Glibc
#endif

/// The guest's wall clock and uptime at the dump, from its own timekeeper.
extension Report {
    public func guestClock() -> Result<GuestClock, KernelDataError> {
        guard let types = kernelTypes else {
            return .failure(KernelDataError("clock", "no kernel types (BTF or --vmlinux's DWARF): the timekeeper's layout is the kernel's"))
        }
        guard let reader = KernelReader(guest: guest) else { return .failure(KernelDataError("clock", "this core holds no guest memory")) }
        let symbols = classifier.symbols
        return GuestClock.read(reader: reader, types: types) { symbols?.address(of: $0) ?? options.absoluteSymbols[$0] }
    }
}

/// Wall-clock times as the tools people compare with print them.
public enum WallClock {
    /// `2026-12-05T06:27:52.123Z` (UTC, milliseconds), for JSON and the summary.
    public static func iso8601(_ ns: UInt64) -> String {
        var t = time_t(ns / 1_000_000_000)
        var tm = tm()
        gmtime_r(&t, &tm)
        let ms = ns % 1_000_000_000 / 1_000_000
        return format(tm, "%Y-%m-%dT%H:%M:%S") + "." + String(repeating: "0", count: 3 - String(ms).count) + String(ms) + "Z"
    }

    /// `Sat Dec  5 06:26:28 2026`, in the local time zone (TZ), as `dmesg -T` prints a record's time.
    public static func ctime(_ ns: UInt64) -> String {
        var t = time_t(ns / 1_000_000_000)
        var tm = tm()
        localtime_r(&t, &tm)
        return format(tm, "%a %b %e %H:%M:%S %Y")
    }

    private static func format(_ tm: tm, _ pattern: String) -> String {
        var tm = tm
        var buf = [Int8](repeating: 0, count: 64)
        let n = strftime(&buf, buf.count, pattern, &tm)
        return String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
