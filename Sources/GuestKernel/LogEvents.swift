/// What the kernel said, in its own log, about why it stopped: panics, oopses, BUGs,
/// lockups, hung tasks and OOM kills, each with the `CPU: … PID: … Comm: …` line the
/// kernel prints after it (the CPU, the task and the taint at that moment).
public struct LogEvent: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        case panic, oops, bug = "BUG", softLockup = "soft lockup", hardLockup = "hard lockup", hung, oom = "OOM"
    }
    public let kind: Kind
    /// The record's text, as the kernel printed it (raw: escape before printing).
    public let text: String
    /// Nanoseconds since boot.
    public let timestamp: UInt64
    /// From the kernel's `CPU: N … PID: P Comm: C …` line after the event, when there is one.
    public var cpu: Int? = nil, pid: Int? = nil, comm: String? = nil
    /// `Not tainted` or `Tainted: …` from that line.
    public var taint: String? = nil
    /// Its record's place in the log (for telling one incident from the next).
    public var index = 0
}

public enum LogEvents {
    /// The event a panic followed from: the last one before it in the same incident (an
    /// oops' report runs some 40 records and a second into the panic); an event further
    /// back (a lockup an hour before a sysrq crash) is history, not the cause.
    public static func cause(of panic: LogEvent, in events: [LogEvent]) -> LogEvent? {
        guard let e = events.last(where: { $0.kind != .panic && $0.index < panic.index }) else { return nil }
        return panic.index - e.index <= 200 && panic.timestamp &- e.timestamp <= 10_000_000_000 ? e : nil
    }

    /// The kernel's running count of oopses, `[#N]` in an oops line (die() prints it, on
    /// every architecture); nil when the line has none.
    public static func oopsNumber(_ text: String) -> Int? {
        let bytes = Array(text.utf8)
        var i = 0
        while i + 1 < bytes.count {   // bounded: one pass over one line
            if bytes[i] == UInt8(ascii: "["), bytes[i + 1] == UInt8(ascii: "#") {
                var j = i + 2, n = 0
                while j < bytes.count, j - i - 2 < 9, bytes[j] >= 0x30, bytes[j] <= 0x39 { n = n * 10 + Int(bytes[j] - 0x30); j += 1 }
                if j > i + 2, j < bytes.count, bytes[j] == UInt8(ascii: "]") { return n }
            }
            i += 1
        }
        return nil
    }

    /// The events in `records`, oldest first. Each record is looked at once, and the
    /// header line is looked for in the few records after an event only.
    public static func find(in records: [LogRecord], release: String? = nil) -> [LogEvent] {
        var events: [LogEvent] = []
        var oomInvoked: Int? = nil
        for (i, r) in records.enumerated() {
            let text = line(r.text)
            guard let kind = kind(of: text) else {
                if text.contains(" invoked oom-killer: ") { oomInvoked = i }
                continue
            }
            var event = LogEvent(kind: kind, text: text, timestamp: r.timestamp, index: i)
            // The header follows within a few records (after "Modules linked in:" and such);
            // an OOM kill's comes before it, after "… invoked oom-killer:" and before the
            // memory and task tables (the next one after it is another report's).
            var from = i + 1
            if kind == .oom {
                guard let invoked = oomInvoked, i - invoked <= 4096 else { events.append(named(event)); continue }
                from = invoked + 1
                oomInvoked = nil
            }
            for later in records[from..<min(records.count, from + 11)] {
                let h = line(later.text)
                if Self.kind(of: h) != nil { break }
                if h.hasPrefix("CPU: ") { header(h, release: release, into: &event); break }
            }
            // The task the message itself names: `INFO: task sh:121 blocked…`, `Killed process
            // 173 (tail)`, `[insmod:165]` (a lockup's header names it too, and its CPU).
            events.append(named(event))
        }
        return events
    }

    /// The task the message itself names, where the header named none; an OOM kill's victim
    /// always (its header names the task that asked for memory).
    static func named(_ e: LogEvent) -> LogEvent {
        guard e.pid == nil || e.kind == .oom, let (comm, pid) = taskInMessage(e.text, kind: e.kind) else { return e }
        var e = e
        (e.comm, e.pid) = (comm, pid)
        return e
    }

    static func taskInMessage(_ text: String, kind: LogEvent.Kind) -> (String, Int)? {
        switch kind {
        case .hung:
            guard let m = text.firstMatch(of: /^INFO: task (.+):([0-9]+) blocked for more than/), let pid = Int(m.2) else { return nil }
            return (String(m.1), pid)
        case .oom:
            guard let m = text.firstMatch(of: /Killed process ([0-9]+) \(([^)]*)\)/), let pid = Int(m.1) else { return nil }
            return (String(m.2), pid)
        case .softLockup:
            guard let m = text.firstMatch(of: /\[(.+):([0-9]+)\]$/), let pid = Int(m.2) else { return nil }
            return (String(m.1), pid)
        default:
            return nil
        }
    }

    /// The first line of a record, without its newline (at most 512 bytes of it).
    static func line(_ bytes: [UInt8]) -> String {
        let first = bytes.prefix(512).prefix { $0 != 0x0a }
        return String(decoding: first, as: UTF8.self)
    }

    static func kind(of text: String) -> LogEvent.Kind? {
        if text.hasPrefix("Kernel panic - not syncing: ") { return .panic }
        if text.contains("BUG: soft lockup") { return .softLockup }
        if text.contains("Watchdog detected hard LOCKUP") { return .hardLockup }
        if text.hasPrefix("INFO: task "), text.contains(" blocked for more than ") { return .hung }
        if text.hasPrefix("Out of memory: Killed process") || text.hasPrefix("Out of memory and no killable processes") { return .oom }
        if text.hasPrefix("Oops: ") || text.hasPrefix("Internal error: Oops") || text.hasPrefix("Unable to handle kernel ") { return .oops }
        if text.hasPrefix("BUG: ") || text.hasPrefix("kernel BUG at ") { return .bug }
        return nil
    }

    /// `CPU: 0 UID: 0 PID: 164 Comm: sh Not tainted 6.12.118+deb13-amd64 #1 …`
    static func header(_ h: String, release: String?, into event: inout LogEvent) {
        let words = h.split(separator: " ", omittingEmptySubsequences: true)
        func after(_ key: String) -> Substring? {
            guard let i = words.firstIndex(of: Substring(key)), i + 1 < words.count else { return nil }
            return words[i + 1]
        }
        event.cpu = after("CPU:").flatMap { Int($0) }
        event.pid = after("PID:").flatMap { Int($0) }
        event.comm = after("Comm:").map(String.init)
        if h.contains(" Not tainted") {
            event.taint = "Not tainted"
        } else if let range = h.firstRange(of: " Tainted: ") {
            // The flags run until the release (" 6.1.0-…"), the first word with a digit.
            var rest = h[range.upperBound...]
            if let release, let end = rest.firstRange(of: " " + release) { rest = rest[..<end.lowerBound] }
            else if let end = rest.firstIndex(where: { $0.isNumber }) { rest = rest[..<end] }
            event.taint = "Tainted: " + rest.trimmingCharacters(in: " ")
        }
    }
}

extension Substring {
    func trimmingCharacters(in set: Character) -> String {
        String(drop { $0 == set }.reversed().drop { $0 == set }.reversed())
    }
}

/// The kernel's taint flags (`tainted_mask`), printed as `print_tainted()` does.
public enum Taint {
    /// Letters by bit, as kernel/panic.c's `taint_flags` (bit 0: 'P' set, 'G' clear).
    static let letters: [Character] = ["P", "F", "S", "R", "M", "B", "U", "D", "A", "W", "C", "I", "O", "E", "L", "K", "X", "T", "N", "J"]

    /// `Not tainted`, or `Tainted: ` with each flag's letter (or a space, 'G' for bit 0
    /// clear), trailing spaces cut; bits the tool does not know are named by number.
    public static func text(_ mask: UInt64) -> String {
        guard mask != 0 else { return "Not tainted" }
        var s = ""
        for (bit, letter) in letters.enumerated() {
            s.append(mask & (1 << UInt64(bit)) != 0 ? letter : bit == 0 ? "G" : " ")
        }
        while s.last == " " { s.removeLast() }
        let unknown = (letters.count..<64).filter { mask & (1 << UInt64($0)) != 0 }
        return "Tainted: " + s + (unknown.isEmpty ? "" : " (and bits \(unknown.map(String.init).joined(separator: ", ")))")
    }

    /// The guest's `tainted_mask`, through its symbols.
    public static func read(reader: KernelReader, address: UInt64) -> UInt64? {
        try? reader.word(address)
    }
}
