import VCPUContext

/// The kernel log before Linux 5.10: `log_buf`, a byte ring of variable-length
/// `struct printk_log` records (header, text, dictionary, padding) from `log_first_idx`
/// to `log_next_idx`; a record of length 0 sends the reader back to the buffer's start.
/// Offsets and sizes come from VMCOREINFO, as makedumpfile reads it.
public enum LegacyLogBuffer {
    static let maxBufferBytes = 1 << 28

    public static func read(vmcoreinfo v: VMCoreInfo, reader: KernelReader) throws(KernelDataError) -> KernelLog {
        let bufSym = try v.required(symbol: "log_buf", for: "log_buf")
        let lenSym = try v.required(symbol: "log_buf_len", for: "log_buf")
        let firstSym = try v.required(symbol: "log_first_idx", for: "log_buf")
        let nextSym = try v.required(symbol: "log_next_idx", for: "log_buf")
        let headerSize = try v.required(size: "printk_log", for: "log_buf")
        let tsOff = try v.required(offset: "printk_log.ts_nsec", for: "log_buf")
        let lenOff = try v.required(offset: "printk_log.len", for: "log_buf")
        let textLenOff = try v.required(offset: "printk_log.text_len", for: "log_buf")
        let callerOff = v.offset("printk_log.caller_id")
        guard headerSize >= 12, headerSize <= 64, tsOff + 8 <= headerSize, lenOff + 2 <= headerSize, textLenOff + 6 <= headerSize else {   // text_len, facility, flags/level read
            throw KernelDataError("log_buf", "SIZE(printk_log) \(headerSize) and its offsets do not fit together")
        }
        let buf: UInt64, size: Int, first: Int, next: Int
        do {
            buf = try reader.word(bufSym)
            size = Int(try reader.u32(lenSym))
            first = Int(try reader.u32(firstSym))
            next = Int(try reader.u32(nextSym))
        } catch {
            throw KernelDataError("log_buf", "its variables are unreadable: \(error)")
        }
        guard size > 0, size <= maxBufferBytes, first < size, next < size else {
            throw KernelDataError("log_buf", "log_buf_len \(size), log_first_idx \(first), log_next_idx \(next) do not describe a buffer")
        }
        // The buffer is read once, bounded by its declared (and checked) length.
        let bytes: [UInt8]
        do { bytes = try reader.bytes(buf, count: size, limit: maxBufferBytes) } catch {
            throw KernelDataError("log_buf", "the buffer at \(hex(buf)) is unreadable: \(error)")
        }
        func u16(_ o: Int) -> Int { Int(bytes[o]) | Int(bytes[o + 1]) << 8 }
        var records: [LogRecord] = []
        var notes: [String] = []
        var index = first
        var wrapped = false
        // Each step consumes at least a header, so this many steps cover the buffer twice.
        for _ in 0..<(2 * size / headerSize + 2) where index != next {
            guard index + headerSize <= size else { notes.append("a record header at \(index) runs past the buffer"); break }
            let length = u16(index + lenOff)
            if length == 0 {
                guard !wrapped else { notes.append("a second wrap marker at \(index)"); break }
                wrapped = true
                index = 0
                continue
            }
            let textLength = u16(index + textLenOff)
            guard length >= headerSize, index + length <= size, headerSize + textLength <= length else {
                notes.append("the record at \(index) (length \(length), text \(textLength)) does not fit; the rest is not read")
                break
            }
            var ts: UInt64 = 0
            for i in 0..<8 { ts |= UInt64(bytes[index + tsOff + i]) << (8 * UInt64(i)) }
            let flags = bytes[index + textLenOff + 5]      // after len, text_len, dict_len, facility
            var caller: String? = nil
            if let callerOff, callerOff + 4 <= headerSize {
                let id = (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[index + callerOff + $1]) << (8 * UInt32($1)) }
                caller = LogRecord.callerText(id)
            }
            records.append(LogRecord(sequence: nil, timestamp: ts, level: Int(flags >> 5), facility: Int(bytes[index + textLenOff + 4]),
                                     text: Array(bytes[(index + headerSize)..<(index + headerSize + textLength)]),
                                     caller: caller, subsystem: nil, device: nil))
            index += length
        }
        return KernelLog(records: records, source: "log_buf at \(hex(buf)) (\(size) bytes)", skipped: 0, notes: notes)
    }
}
