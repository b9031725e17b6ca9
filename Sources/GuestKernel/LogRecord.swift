/// One record of the kernel log, as the ring buffer holds it.
public struct LogRecord: Sendable, Equatable {
    /// The record's sequence number (nil in the pre-5.10 ring, which has none).
    public let sequence: UInt64?
    /// Nanoseconds since boot (`local_clock()` when the record was stored).
    public let timestamp: UInt64
    /// Log level 0–7 and facility, where the ring records them.
    public let level: Int?
    public let facility: Int?
    /// The text, raw bytes from the guest: escape before printing.
    public let text: [UInt8]
    /// `CONFIG_PRINTK_CALLER`'s id: a task (T) or CPU (C) number; nil when absent.
    public let caller: String?
    /// The device dictionary (`SUBSYSTEM=`, `DEVICE=`), when the record has one.
    public let subsystem: String?
    public let device: String?

    public init(sequence: UInt64?, timestamp: UInt64, level: Int?, facility: Int?, text: [UInt8],
                caller: String?, subsystem: String?, device: String?) {
        self.sequence = sequence
        self.timestamp = timestamp
        self.level = level
        self.facility = facility
        self.text = text
        self.caller = caller
        self.subsystem = subsystem
        self.device = device
    }

    /// The caller id as the kernel prints it: bit 31 set for a CPU, else a task id.
    static func callerText(_ id: UInt32) -> String? {
        id == 0 ? nil : id & 0x8000_0000 != 0 ? "C\(id & 0x7fff_ffff)" : "T\(id)"
    }
}

/// The log, with what could not be read (records skipped as overwritten or invalid).
public struct KernelLog: Sendable {
    public let records: [LogRecord]
    /// Which ring it came from and where, for `--describe`.
    public let source: String
    /// Records that were skipped, and why (reused descriptors, bad positions).
    public let skipped: Int
    public let notes: [String]

    /// Records the ring no longer holds: the oldest kept record's sequence number (records
    /// are numbered from 0 at boot). Nil where the ring does not number them (before 5.10).
    public var lost: UInt64? { records.first?.sequence }

    /// What the reader should know when records were lost, nil when none were.
    public var lostNote: String? {
        guard let lost, lost > 0 else { return nil }
        return "the ring wrapped: its first \(lost) record\(lost == 1 ? "" : "s") (since boot) were overwritten; the oldest kept is record \(lost)"
    }
}
