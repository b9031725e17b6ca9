import GuestKernel
import VCPUContext
import XenctxReport

extension FuzzTargets {
    /// The kernel log as `GuestKernel.log` reads it with VMCOREINFO: `prb` and the ring's
    /// whole layout (every OFFSET and SIZE of printk_ringbuffer, prb_desc_ring, prb_desc,
    /// prb_data_blk_lpos, printk_info, dev_printk_info, prb_data_ring) from VMCOREINFO text in
    /// the input, the ring in sparse memory after it; `log_buf` (before 5.10) when the text
    /// names that instead. With flag 2: the search for the boot-time ring by its shape
    /// (no VMCOREINFO, no `prb` symbol) over an ARM32 guest's lowmem made of the rest.
    ///   [flags: 1 = 4-byte words, 2 = static ring search][u16 length][VMCOREINFO text][memory]
    static func printkRing(_ data: UnsafeRawBufferPointer) {
        var h = FuzzHeader(data)
        let flags = h.u8()
        let text = Array(h.take(Int(h.u16())))
        if flags & 2 != 0 {
            let lowmem = FuzzLowmem(h.rest)
            let description = GuestDescription(architecture: .arm32, isPV: false, layout: .arm(entrySize: 352), protectedMode: true,
                                               wordSize: 4, evidence: [])
            let guest = Guest(description: description, vcpus: [], frames: lowmem, warnings: [], facts: [])
            let reader = KernelReader(memory: GuestMemory(frames: lowmem, translation: lowmem.translation), wordSize: 4)
            if let found = try? PrintkRing.locateStatic(guest: guest, reader: reader) { _ = LogText.render(found.log) }
            return
        }
        let memory = FuzzRegions(&h)
        let reader = KernelReader(memory: GuestMemory(frames: memory, translation: .identity), wordSize: flags & 1 == 0 ? 8 : 4)
        guard let info = try? VMCoreInfo(text: text) else { return }
        // GuestKernel.log's choice: the lockless ring when VMCOREINFO names prb, else log_buf.
        var log: KernelLog? = nil
        if info.symbol("prb") != nil {
            log = try? PrintkRing.read(vmcoreinfo: info, reader: reader)
        } else if info.symbol("log_buf") != nil {
            log = try? LegacyLogBuffer.read(vmcoreinfo: info, reader: reader)
        }
        if let log { _ = LogText.render(log) }
    }
}

extension Seeds {
    /// printkring seeds from a real guest: its VMCOREINFO's printk lines and the last six
    /// records of its ring, read where the kernel keeps them (`prb`, the ring, its
    /// descriptors, infos and data blocks), the tail moved up to the first of them.
    static func printkRingSeed(kernel: GuestKernel, reader: KernelReader) -> [UInt8]? {
        guard case .success(let located) = kernel.vmcoreinfo, let raw = try? reader.cString(located.address, max: VMCoreInfo.maxBytes) else { return nil }
        let info = located.info
        // The ring's lines (and the two every VMCOREINFO needs), in the kernel's order.
        let lines = raw.split(separator: 0x0a).filter { line in
            let s = String(decoding: line, as: UTF8.self)
            return s.hasPrefix("OSRELEASE=") || s.hasPrefix("PAGESIZE=") || s.contains("printk") || s.contains("prb")
        }
        let text = Array(lines.joined(separator: [0x0a])) + [0x0a]
        let w = reader.wordSize
        func o(_ name: String) -> UInt64? { info.offset(name).map { UInt64($0) } }
        guard let prb = info.symbol("prb"), let rb = try? reader.word(prb),
              let descRing = o("printk_ringbuffer.desc_ring"), let dataRing = o("printk_ringbuffer.text_data_ring"),
              let countBitsOff = o("prb_desc_ring.count_bits"), let descsOff = o("prb_desc_ring.descs"), let infosOff = o("prb_desc_ring.infos"),
              let headOff = o("prb_desc_ring.head_id"), let tailOff = o("prb_desc_ring.tail_id"),
              let sizeBitsOff = o("prb_data_ring.size_bits"), let dataOff = o("prb_data_ring.data"),
              let descSize = info.size("prb_desc"), let infoSize = info.size("printk_info"),
              let lposOff = o("prb_desc.text_blk_lpos"), let beginOff = o("prb_data_blk_lpos.begin"), let nextOff = o("prb_data_blk_lpos.next"),
              let countBits = try? reader.u32(rb &+ descRing &+ countBitsOff), countBits < 32,
              let descs = try? reader.word(rb &+ descRing &+ descsOff), let infos = try? reader.word(rb &+ descRing &+ infosOff),
              let head = try? reader.word(rb &+ descRing &+ headOff),
              let sizeBits = try? reader.u32(rb &+ dataRing &+ sizeBitsOff), sizeBits < 32, let data = try? reader.word(rb &+ dataRing &+ dataOff),
              let ring = try? reader.bytes(rb, count: info.size("printk_ringbuffer") ?? Int(dataRing) + 4 * w, limit: 4096)
        else { return nil }
        let idMask = (UInt64(1) << UInt64(w * 8 - 2)) - 1
        let count = UInt64(1) << UInt64(countBits), dataSize = UInt64(1) << UInt64(sizeBits)
        let lposMask: UInt64 = w == 8 ? ~0 : 0xffff_ffff
        var m = FuzzRegions.Builder()
        m.put(prb, word: rb, w)
        m.put(rb, ring)
        let first = (head &- 5) & idMask
        m.put(rb &+ descRing &+ tailOff, word: first, w)
        for k in 0..<UInt64(6) {
            let slot = ((first &+ k) & idMask) & (count - 1)
            let desc = descs &+ slot &* UInt64(descSize), record = infos &+ slot &* UInt64(infoSize)
            guard let d = try? reader.bytes(desc, count: descSize, limit: 4096), let i = try? reader.bytes(record, count: infoSize, limit: 4096),
                  let begin = try? reader.word(desc &+ lposOff &+ beginOff), let next = try? reader.word(desc &+ lposOff &+ nextOff) else { return nil }
            m.put(desc, d); m.put(record, i)
            let (b, n) = (begin & lposMask, next & lposMask)
            guard b & 1 == 0 else { continue }
            let (start, size) = b >> UInt64(sizeBits) == n >> UInt64(sizeBits) ? (b & (dataSize - 1), n &- b) : (0, n & (dataSize - 1))
            if size > 0, size <= 4096, let block = try? reader.bytes(data &+ start, count: Int(size), limit: 4096) { m.put(data &+ start, block) }
        }
        var out: [UInt8] = [w == 8 ? 0 : 1]
        out.le(UInt64(text.count), 2)
        return out + text + m.encoded
    }

    /// log_buf as Linux 5.4 lays it out (16-byte `printk_log` headers), holding the first
    /// records of a real log, with the VMCOREINFO lines that describe it. `wrapped`: as a
    /// long-running kernel leaves it, the oldest records at the end from log_first_idx, a
    /// zero-length header sending the reader back to the start, the newest up to
    /// log_next_idx, free space between.
    static func legacyLogSeed(_ log: KernelLog, osRelease: String, wrapped: Bool = false) -> [UInt8] {
        let at: UInt64 = FuzzTargets.base, buffer = FuzzTargets.base + 0x1000
        var records: [[UInt8]] = []
        for r in log.records.prefix(6) {
            var bytes: [UInt8] = []
            let text = Array(r.text.prefix(200))
            let length = (16 + text.count + 7) & ~7
            bytes.le(r.timestamp, 8); bytes.le(UInt64(length), 2); bytes.le(UInt64(text.count), 2); bytes.le(0, 2)
            bytes.append(UInt8(truncatingIfNeeded: r.facility ?? 0)); bytes.append(UInt8(truncatingIfNeeded: (r.level ?? 6) << 5))
            records.append(bytes + text + [UInt8](repeating: 0, count: length - 16 - text.count))
        }
        let bytes: [UInt8], first: Int, next: Int
        if wrapped {
            let newest = records.suffix(records.count / 2).flatMap { $0 }, oldest = records.prefix(records.count - records.count / 2).flatMap { $0 }
            // Free space between the newest and the oldest (the kernel makes room before a write).
            (bytes, first, next) = (newest + [UInt8](repeating: 0, count: 32) + oldest + [UInt8](repeating: 0, count: 16), newest.count + 32, newest.count)
        } else {
            let all = records.flatMap { $0 }
            (bytes, first, next) = (all + [UInt8](repeating: 0, count: 64), 0, all.count)
        }
        var m = FuzzRegions.Builder()
        m.put(at, word: buffer, 8); m.put(at + 8, word: UInt64(bytes.count), 4); m.put(at + 12, word: UInt64(first), 4); m.put(at + 16, word: UInt64(next), 4)
        m.put(buffer, bytes)
        let text = Array("""
        OSRELEASE=\(osRelease)
        PAGESIZE=4096
        SYMBOL(log_buf)=\(hex(at))
        SYMBOL(log_buf_len)=\(hex(at + 8))
        SYMBOL(log_first_idx)=\(hex(at + 12))
        SYMBOL(log_next_idx)=\(hex(at + 16))
        SIZE(printk_log)=16
        OFFSET(printk_log.ts_nsec)=0
        OFFSET(printk_log.len)=8
        OFFSET(printk_log.text_len)=10

        """.utf8)
        var out: [UInt8] = [0]
        out.le(UInt64(text.count), 2)
        return out + text + m.encoded
    }

    /// The boot-time ring (`printk_rb_static`) of a 32-bit kernel at the start of ARM32
    /// lowmem, in the layout of Linux 5.10–6.x, with the first records of a real log: what
    /// `PrintkRing.locateStatic` finds by its shape.
    static func staticRingSeed(_ log: KernelLog) -> [UInt8] {
        let lowmem: UInt64 = 0xc000_0000
        var m = [UInt8](repeating: 0, count: 3 * 4096)
        func put(_ at: Int, _ v: UInt64, _ n: Int = 4) { for i in 0..<n { m[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) } }
        let descs = 0x1000, infos = 0x1400, data = 0x2000
        let records = Array(log.records.prefix(6))
        put(0, 8)                                               // count_bits
        put(4, lowmem + UInt64(descs)); put(8, lowmem + UInt64(infos))
        put(12, UInt64(records.count)); put(16, 1)              // head_id, tail_id
        put(24, 13); put(28, lowmem + UInt64(data))             // text_data_ring: size_bits, data
        var lpos = 0
        for (i, r) in records.enumerated() {
            let id = UInt64(i + 1)
            let text = Array(r.text.prefix(200))
            let size = (4 + text.count + 3) & ~3
            guard lpos + size <= 4096 else { break }
            put(descs + Int(id) * 12, id | 2 << 30); put(descs + Int(id) * 12 + 4, UInt64(lpos)); put(descs + Int(id) * 12 + 8, UInt64(lpos + size))
            put(data + lpos, id)
            for (j, b) in text.enumerated() { m[data + lpos + 4 + j] = b }
            put(infos + Int(id) * 88, r.sequence ?? id, 8); put(infos + Int(id) * 88 + 8, r.timestamp, 8); put(infos + Int(id) * 88 + 16, UInt64(text.count), 2)
            lpos += size
        }
        return [3, 0, 0] + m
    }
}
