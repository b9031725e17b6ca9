import VCPUContext

/// The lockless printk ring buffer (Linux >= 5.10, `kernel/printk/printk_ringbuffer.c`),
/// read with the offsets and sizes VMCOREINFO gives, as makedumpfile and
/// vmcore-dmesg do: descriptors from the tail id to the head id; each committed or
/// finalized descriptor whose id is current names its text by logical positions
/// (lpos) in the data ring, where the block starts with the id it belongs to.
public enum PrintkRing {
    /// Beyond any log_buf_len the kernel allows (2^25 bytes with 2^20 records in practice).
    /// LOG_BUF_SHIFT is at most 25 and a descriptor stands for 2^5 bytes of text.
    static let maxCountBits: UInt32 = 20
    /// Unreadable descriptors in a row after which the rest are not tried (the array is gone).
    static let maxFaultsInARow = 64
    static let maxSizeBits: UInt32 = 28
    static let maxText = 8192

    public static func read(vmcoreinfo v: VMCoreInfo, reader: KernelReader) throws(KernelDataError) -> KernelLog {
        guard let prbSymbol = v.symbol("prb") else { throw KernelDataError("printk ring", "VMCOREINFO has no SYMBOL(prb)") }
        // `prb` is a pointer to the ring (printk_rb_static, or the dynamic one after boot).
        let rb: UInt64
        do { rb = try reader.word(prbSymbol) } catch { throw KernelDataError("printk ring", "prb unreadable: \(error)") }
        return try readRing(at: rb, layout: v, reader: reader)
    }

    /// Reads the ring whose `struct printk_ringbuffer` is at `rb`.
    public static func readRing(at rb: UInt64, layout v: VMCoreInfo, reader: KernelReader) throws(KernelDataError) -> KernelLog {
        func fault(_ what: String, _ e: MemoryFault) -> KernelDataError { KernelDataError("printk ring", "\(what) unreadable: \(e)") }
        let w = reader.wordSize
        let descRingOff = try v.required(offset: "printk_ringbuffer.desc_ring", for: "printk ring")
        let dataRingOff = try v.required(offset: "printk_ringbuffer.text_data_ring", for: "printk ring")
        let countBitsOff = try v.required(offset: "prb_desc_ring.count_bits", for: "printk ring")
        let descsOff = try v.required(offset: "prb_desc_ring.descs", for: "printk ring")
        let infosOff = try v.required(offset: "prb_desc_ring.infos", for: "printk ring")
        let headOff = try v.required(offset: "prb_desc_ring.head_id", for: "printk ring")
        let tailOff = try v.required(offset: "prb_desc_ring.tail_id", for: "printk ring")
        let sizeBitsOff = try v.required(offset: "prb_data_ring.size_bits", for: "printk ring")
        let dataOff = try v.required(offset: "prb_data_ring.data", for: "printk ring")
        let descSize = try v.required(size: "prb_desc", for: "printk ring")
        let stateOff = try v.required(offset: "prb_desc.state_var", for: "printk ring")
        let lposOff = try v.required(offset: "prb_desc.text_blk_lpos", for: "printk ring")
        let beginOff = try v.required(offset: "prb_data_blk_lpos.begin", for: "printk ring")
        let nextOff = try v.required(offset: "prb_data_blk_lpos.next", for: "printk ring")
        let infoSize = try v.required(size: "printk_info", for: "printk ring")
        let seqOff = try v.required(offset: "printk_info.seq", for: "printk ring")
        let tsOff = try v.required(offset: "printk_info.ts_nsec", for: "printk ring")
        let lenOff = try v.required(offset: "printk_info.text_len", for: "printk ring")
        let callerOff = v.offset("printk_info.caller_id")
        let devOff = v.offset("printk_info.dev_info")
        let subsystemOff = v.offset("dev_printk_info.subsystem"), deviceOff = v.offset("dev_printk_info.device")
        let subsystemLen = min(v.lengths["printk_info_subsystem"] ?? 16, 64), deviceLen = min(v.lengths["printk_info_device"] ?? 48, 64)
        guard descSize >= 3 * w, infoSize >= 24, infoSize <= 4096, descSize <= 4096 else {
            throw KernelDataError("printk ring", "SIZE(prb_desc) \(descSize) or SIZE(printk_info) \(infoSize) is not plausible")
        }
        let countBits: UInt32, descs: UInt64, infos: UInt64, head: UInt64, tail: UInt64, sizeBits: UInt32, data: UInt64
        do {
            let dr = rb &+ UInt64(descRingOff), tr = rb &+ UInt64(dataRingOff)
            countBits = try reader.u32(dr &+ UInt64(countBitsOff))
            descs = try reader.word(dr &+ UInt64(descsOff))
            infos = try reader.word(dr &+ UInt64(infosOff))
            head = try reader.word(dr &+ UInt64(headOff))
            tail = try reader.word(dr &+ UInt64(tailOff))
            sizeBits = try reader.u32(tr &+ UInt64(sizeBitsOff))
            data = try reader.word(tr &+ UInt64(dataOff))
        } catch {
            throw fault("the ring's header", error)
        }
        guard countBits <= maxCountBits else { throw KernelDataError("printk ring", "count_bits is \(countBits): more than 2^\(maxCountBits) descriptors is not a real ring") }
        guard sizeBits >= 4 && sizeBits <= maxSizeBits else { throw KernelDataError("printk ring", "size_bits is \(sizeBits): a data ring of that size is not real") }

        let bits = UInt64(w * 8)
        let flagsShift = bits - 2
        let idMask = (UInt64(1) << flagsShift) - 1
        let count = UInt64(1) << UInt64(countBits)
        let dataSize = UInt64(1) << UInt64(sizeBits)
        let lposMask: UInt64 = w == 8 ? ~0 : 0xffff_ffff
        var records: [LogRecord] = []
        var skipped = 0
        var notes: [String] = []
        var id = tail & idMask
        var faultsInARow = 0
        // At most one pass: from the tail to the head (or `count` ids when they are garbage).
        let span = min(((head &- tail) & idMask) &+ 1, count)
        for _ in 0..<span {
            defer { id = (id &+ 1) & idMask }
            let isHead = id == head & idMask
            let desc = descs &+ (id & (count - 1)) &* UInt64(descSize)
            let info = infos &+ (id & (count - 1)) &* UInt64(infoSize)
            do {
                let state = try reader.word(desc &+ UInt64(stateOff))
                let kind = state >> flagsShift
                // 1 committed, 2 finalized; a descriptor whose id moved on was reused.
                guard state & idMask == id, kind == 1 || kind == 2 else {
                    skipped += 1
                    if isHead { break } else { continue }
                }
                let begin = try reader.word(desc &+ UInt64(lposOff + beginOff)) & lposMask
                let next = try reader.word(desc &+ UInt64(lposOff + nextOff)) & lposMask
                var text: [UInt8] = []
                let textLen = Int(try reader.u16(info &+ UInt64(lenOff)))
                if begin & 1 != 0 {
                    // Data-less: NO_LPOS on both is an empty line, anything else a failure.
                    if !(begin == 3 && next == 3) { skipped += 1; if isHead { break } else { continue } }
                } else {
                    guard let (start, size) = blockPlace(begin: begin, next: next, sizeBits: UInt64(sizeBits), dataSize: dataSize, lposMask: lposMask),
                          size >= UInt64(w), textLen <= Int(size) - w, textLen <= maxText else {
                        skipped += 1
                        if notes.count < 9 { notes.append("record id \(id): text position \(hex(begin))–\(hex(next)) or length \(textLen) does not fit the \(dataSize)-byte data ring") }
                        if isHead { break } else { continue }
                    }
                    let blockID = try reader.word(data &+ start) & idMask
                    guard blockID == id else { skipped += 1; if isHead { break } else { continue } }
                    text = try reader.bytes(data &+ start &+ UInt64(w), count: textLen, limit: maxText)
                }
                let seq = try reader.u64(info &+ UInt64(seqOff))
                let ts = try reader.u64(info &+ UInt64(tsOff))
                // facility and flags:5/level:3 follow text_len (struct printk_info, 5.10+).
                let facility = Int(try reader.u8(info &+ UInt64(lenOff + 2)))
                let level = Int(try reader.u8(info &+ UInt64(lenOff + 3)) >> 5)
                let caller = try callerOff.map { o throws(MemoryFault) in try reader.u32(info &+ UInt64(o)) }.flatMap(LogRecord.callerText)
                var subsystem: String? = nil, device: String? = nil
                if let devOff, let subsystemOff, let deviceOff {
                    let s = try reader.cString(info &+ UInt64(devOff + subsystemOff), max: subsystemLen)
                    let d = try reader.cString(info &+ UInt64(devOff + deviceOff), max: deviceLen)
                    if !s.isEmpty { subsystem = String(decoding: s, as: UTF8.self) }
                    if !d.isEmpty { device = String(decoding: d, as: UTF8.self) }
                }
                records.append(LogRecord(sequence: seq, timestamp: ts, level: level, facility: facility, text: text,
                                         caller: caller, subsystem: subsystem, device: device))
                faultsInARow = 0
            } catch {
                skipped += 1
                if notes.count < 9 { notes.append("record id \(id): \(error)") }
                faultsInARow += 1
                if faultsInARow >= maxFaultsInARow {
                    notes.append("\(maxFaultsInARow) descriptors in a row are unreadable: the rest of the ring is not read")
                    break
                }
            }
            if isHead { break }
        }
        return KernelLog(records: records, source: "printk ring buffer at \(hex(rb)) (\(count) descriptors, \(dataSize)-byte data ring)",
                         skipped: skipped, notes: notes)
    }

    /// Where a data block lies in the ring and its size: in place, or wrapped to the ring's
    /// start (the kernel's `get_data`); nil when the positions are not a valid block.
    static func blockPlace(begin: UInt64, next: UInt64, sizeBits: UInt64, dataSize: UInt64, lposMask: UInt64) -> (UInt64, UInt64)? {
        let wrapsMask = lposMask >> sizeBits
        let wrapsBegin = begin >> sizeBits, wrapsNext = next >> sizeBits
        if wrapsBegin == wrapsNext, next >= begin {
            let size = next - begin
            guard size <= dataSize else { return nil }
            return (begin & (dataSize - 1), size)
        }
        if (wrapsBegin &+ 1) & wrapsMask == wrapsNext {
            // The block did not fit before the end: it starts at offset 0.
            let size = next & (dataSize - 1)
            return (0, size)
        }
        return nil
    }

    /// The ring's layout in Linux 5.10 to 6.x (unchanged where the reader looks), as
    /// VMCOREINFO states it on 64- and 32-bit kernels, for a kernel that has none.
    public static func assumedLayout(prb: UInt64, wordSize w: Int) -> VMCoreInfo {
        let l = w  // sizeof(long) and of a pointer
        let text = """
        OSRELEASE=unknown
        PAGESIZE=4096
        SYMBOL(prb)=\(hex(prb))
        OFFSET(printk_ringbuffer.desc_ring)=0
        OFFSET(printk_ringbuffer.text_data_ring)=\(6 * l)
        OFFSET(prb_desc_ring.count_bits)=0
        OFFSET(prb_desc_ring.descs)=\(l)
        OFFSET(prb_desc_ring.infos)=\(2 * l)
        OFFSET(prb_desc_ring.head_id)=\(3 * l)
        OFFSET(prb_desc_ring.tail_id)=\(4 * l)
        SIZE(prb_desc)=\(3 * l)
        OFFSET(prb_desc.state_var)=0
        OFFSET(prb_desc.text_blk_lpos)=\(l)
        OFFSET(prb_data_blk_lpos.begin)=0
        OFFSET(prb_data_blk_lpos.next)=\(l)
        SIZE(printk_info)=88
        OFFSET(printk_info.seq)=0
        OFFSET(printk_info.ts_nsec)=8
        OFFSET(printk_info.text_len)=16
        OFFSET(printk_info.caller_id)=20
        OFFSET(printk_info.dev_info)=24
        OFFSET(dev_printk_info.subsystem)=0
        LENGTH(printk_info_subsystem)=16
        OFFSET(dev_printk_info.device)=16
        LENGTH(printk_info_device)=48
        OFFSET(prb_data_ring.size_bits)=0
        OFFSET(prb_data_ring.data)=\(l)

        """
        // The text is ours and well formed.
        return try! VMCoreInfo(text: Array(text.utf8))
    }

    /// Finds the boot-time ring (`printk_rb_static`, in the image's .data) by its shape, for
    /// a kernel with neither VMCOREINFO nor data symbols in kallsyms (no KALLSYMS_ALL):
    /// `count_bits` (8–22) at the start and `size_bits` = count_bits + 5 (PRB_AVGBITS) at
    /// the text ring, kernel pointers to descriptors, infos and data between, and records
    /// that read back. The ring found is the static one: an early-boot log, or the whole
    /// log when no `log_buf_len` made the kernel move it.
    public static func locateStatic(guest: Guest, reader: KernelReader) throws(KernelDataError) -> (address: UInt64, log: KernelLog) {
        let l = reader.wordSize
        let kernelHalf: UInt64 = l == 8 ? 0xffff_0000_0000_0000 : 0xc000_0000
        let (found, pages) = reader.firstInKernelImage(guest: guest) { va, page -> (UInt64, KernelLog)? in
            var o = 0
            while o + 8 * l <= 4096 {
                defer { o += l }
                let countBits = page.loadUnaligned(fromByteOffset: o, as: UInt32.self)
                guard (8...maxCountBits).contains(countBits),
                      page.loadUnaligned(fromByteOffset: o + 6 * l, as: UInt32.self) == countBits + 5 else { continue }
                func word(_ i: Int) -> UInt64 {
                    l == 8 ? page.loadUnaligned(fromByteOffset: o + i * l, as: UInt64.self) : UInt64(page.loadUnaligned(fromByteOffset: o + i * l, as: UInt32.self))
                }
                guard [1, 2, 7].allSatisfy({ word($0) >= kernelHalf && word($0) % UInt64(l) == 0 }) else { continue }
                let ring = va + UInt64(o)
                // `prb` points at the ring: read it as if through that pointer.
                let layout = assumedLayout(prb: ring, wordSize: l)
                guard let log = try? readRing(at: ring, layout: layout, reader: reader), !log.records.isEmpty else { continue }
                return (ring, log)
            }
            return nil
        }
        if let (found, _) = found { return found }
        throw KernelDataError("printk ring", "no ring buffer found by its shape (\(pages) mapped pages of the kernel image searched)")
    }
}
