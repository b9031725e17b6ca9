import GuestKernel
import Symbols

/// The kernel log as `dmesg` and the console print it: `[seconds.micro] text`, each line
/// of a multi-line record with its record's timestamp. Guest text is escaped (tabs kept).
public enum LogText {
    /// With `bootRealtime` (the guest's wall-clock time at boot, ns), each record's time is
    /// printed as `dmesg -T` prints it: `[Sat Dec  5 06:26:28 2026] `, boot time plus timestamp.
    public static func render(_ log: KernelLog, bootRealtime: UInt64? = nil) -> String {
        var out = ""
        out.reserveCapacity(log.records.count * 80)
        for r in log.records {
            let prefix = bootRealtime.map { "[" + WallClock.ctime($0 &+ r.timestamp) + "] " } ?? timestamp(r.timestamp)
            // Invalid UTF-8 from the guest becomes U+FFFD; control bytes are escaped.
            let text = String(decoding: r.text, as: UTF8.self)
            for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                out += prefix + TerminalSafe.escape(String(line), allowTab: true) + "\n"
            }
        }
        return out
    }

    /// `[%5lu.%06lu] `, as the kernel's print_time.
    static func timestamp(_ ns: UInt64) -> String {
        let seconds = String(ns / 1_000_000_000), micro = String(ns % 1_000_000_000 / 1000)
        return "[" + String(repeating: " ", count: max(0, 5 - seconds.count)) + seconds + "." +
            String(repeating: "0", count: 6 - micro.count) + micro + "] "
    }
}
