import Testing
@testable import GuestKernel

/// The printk ring (5.10+) and log_buf (before) on rings laid out in memory: well-formed,
/// then with hostile descriptors, positions, lengths and counts.
struct PrintkRingTests {
    static let prb: UInt64 = 0xffff_ffff_8300_0000        // `prb`: a pointer to the ring
    static let ring: UInt64 = 0xffff_ffff_8300_0100
    static let descs: UInt64 = 0xffff_ffff_8301_0000, infos: UInt64 = 0xffff_ffff_8302_0000
    static let data: UInt64 = 0xffff_ffff_8304_0000
    static let countBits: UInt32 = 4, sizeBits: UInt32 = 12     // 16 descriptors, 4 KiB of text

    struct Record { var id: UInt64; var text: String; var ts: UInt64; var begin: UInt64? = nil; var next: UInt64? = nil; var state: UInt64 = 2 }

    /// A ring holding `records` (ids in order), laid out as Linux 6.1 does on 64-bit.
    static func memory(_ records: [Record], head: UInt64? = nil, tail: UInt64? = nil) -> TestMemory {
        let m = TestMemory()
        m.write64(prb, ring)
        m.write32(ring, countBits)
        m.write64(ring + 8, descs); m.write64(ring + 16, infos)
        m.write64(ring + 24, head ?? records.last!.id); m.write64(ring + 32, tail ?? records.first!.id)
        m.write32(ring + 48, sizeBits); m.write64(ring + 56, data)
        var lpos: UInt64 = 0
        for r in records {
            let slot = r.id & 15
            let text = Array(r.text.utf8)
            let size = UInt64((8 + text.count + 7) & ~7)
            let begin = r.begin ?? lpos, next = r.next ?? lpos + size
            m.write64(descs + slot * 24, r.id | r.state << 62)
            m.write64(descs + slot * 24 + 8, begin); m.write64(descs + slot * 24 + 16, next)
            m.write64(data + (lpos & 0xfff), r.id)
            m.write(data + (lpos & 0xfff) + 8, text)
            m.write64(infos + slot * 88, r.id); m.write64(infos + slot * 88 + 8, r.ts)
            m.write(infos + slot * 88 + 16, [UInt8(text.count & 0xff), UInt8(text.count >> 8)])
            lpos += size
        }
        return m
    }

    static var layout: VMCoreInfo { PrintkRing.assumedLayout(prb: prb, wordSize: 8) }

    @Test func readsRecordsInOrder() throws {
        let m = Self.memory([Record(id: 100, text: "Booting Linux", ts: 0), Record(id: 101, text: "line one\nline two", ts: 1_954_910_123)])
        let log = try PrintkRing.read(vmcoreinfo: Self.layout, reader: m.reader())
        #expect(log.records.map { String(decoding: $0.text, as: UTF8.self) } == ["Booting Linux", "line one\nline two"])
        #expect(log.records.map(\.timestamp) == [0, 1_954_910_123])
        #expect(log.skipped == 0)
    }

    @Test func descriptorsPointingOutsideTheDataRingAreSkipped() throws {
        // Record 2's text positions are two wraps apart: not a block of this ring.
        let m = Self.memory([Record(id: 1, text: "first", ts: 1), Record(id: 2, text: "bad", ts: 2, begin: 0x10, next: 0x3010),
                             Record(id: 3, text: "third", ts: 3)])
        let log = try PrintkRing.read(vmcoreinfo: Self.layout, reader: m.reader())
        #expect(log.records.map { String(decoding: $0.text, as: UTF8.self) } == ["first", "third"])
        #expect(log.skipped == 1)
        #expect(log.notes.first?.contains("does not fit") == true)
    }

    @Test func reusedOrUnfinishedDescriptorsAreSkipped() throws {
        var reused = Record(id: 2, text: "stale", ts: 2)
        reused.state = 3   // reusable
        let m = Self.memory([Record(id: 1, text: "kept", ts: 1), reused])
        let log = try PrintkRing.read(vmcoreinfo: Self.layout, reader: m.reader())
        #expect(log.records.count == 1 && log.skipped == 1)
    }

    @Test func textLongerThanItsBlockIsSkipped() throws {
        let m = Self.memory([Record(id: 1, text: "short", ts: 1)])
        m.write(Self.infos + 1 * 88 + 16, [0xff, 0x0f])    // text_len 4095
        let log = try PrintkRing.read(vmcoreinfo: Self.layout, reader: m.reader())
        #expect(log.records.isEmpty && log.skipped == 1)
    }

    @Test func absurdSizesAreRefused() {
        let m = Self.memory([Record(id: 1, text: "x", ts: 1)])
        m.write32(Self.ring, 40)
        #expect { try PrintkRing.read(vmcoreinfo: Self.layout, reader: m.reader()) } throws: { "\($0)".contains("count_bits is 40") }
        let m2 = Self.memory([Record(id: 1, text: "x", ts: 1)])
        m2.write32(Self.ring + 48, 63)
        #expect { try PrintkRing.read(vmcoreinfo: Self.layout, reader: m2.reader()) } throws: { "\($0)".contains("size_bits is 63") }
    }

    @Test func garbageHeadAndTailEndAfterOnePass() throws {
        // Tail and head far apart: at most one pass over the 16 descriptors.
        let m = Self.memory([Record(id: 5, text: "only", ts: 1)], head: 0x1234_5678, tail: 0)
        let log = try PrintkRing.read(vmcoreinfo: Self.layout, reader: m.reader())
        #expect(log.records.count <= 16)
    }

    @Test func missingLayoutKeysAreNamed() {
        let m = Self.memory([Record(id: 1, text: "x", ts: 1)])
        let info = try! VMCoreInfo(text: Array("OSRELEASE=6.1\nPAGESIZE=4096\nSYMBOL(prb)=ffffffff83000000\n".utf8))
        #expect { try PrintkRing.read(vmcoreinfo: info, reader: m.reader()) } throws: { "\($0)".contains("OFFSET(printk_ringbuffer.desc_ring)") }
    }

    @Test func theRingIsFoundByItsShapeWithoutAnySymbol() throws {
        let m = Self.memory([Record(id: 7, text: "Kernel panic - not syncing", ts: 5)])
        // The ring must pass every check; the search itself is exercised on the corpus's
        // boot-oops case, where the kernel died before writing VMCOREINFO.
        let log = try PrintkRing.readRing(at: Self.ring, layout: Self.layout, reader: m.reader())
        #expect(log.records.first.map { String(decoding: $0.text, as: UTF8.self) } == "Kernel panic - not syncing")
    }
}

struct LegacyLogBufferTests {
    static let vars: UInt64 = 0xc100_0000, buffer: UInt64 = 0xc200_0000

    /// log_buf of 256 bytes with records (ts, text) from `first`, 16-byte headers as 3.x–5.9.
    static func memory(_ records: [(UInt64, String)], first: Int = 0, wrapAt: Int? = nil) -> (TestMemory, VMCoreInfo) {
        let m = TestMemory()
        var index = first
        for (i, r) in records.enumerated() {
            if let wrapAt, i == wrapAt { m.write(buffer + UInt64(index), [UInt8](repeating: 0, count: 16)); index = 0 }
            let text = Array(r.1.utf8)
            let length = (16 + text.count + 3) & ~3
            m.write64(buffer + UInt64(index), r.0)
            m.write(buffer + UInt64(index) + 8, [UInt8(length), 0, UInt8(text.count), 0, 0, 0, 0, 6 << 5])
            m.write(buffer + UInt64(index) + 16, text)
            index += length
        }
        m.write32(vars, UInt32(buffer)); m.write32(vars + 4, 256); m.write32(vars + 8, UInt32(first)); m.write32(vars + 12, UInt32(index))
        let text = """
        OSRELEASE=5.4.0
        PAGESIZE=4096
        SYMBOL(log_buf)=c1000000
        SYMBOL(log_buf_len)=c1000004
        SYMBOL(log_first_idx)=c1000008
        SYMBOL(log_next_idx)=c100000c
        SIZE(printk_log)=16
        OFFSET(printk_log.ts_nsec)=0
        OFFSET(printk_log.len)=8
        OFFSET(printk_log.text_len)=10

        """
        return (m, try! VMCoreInfo(text: Array(text.utf8)))
    }

    @Test func readsRecordsAcrossTheWrap() throws {
        let (m, v) = Self.memory([(1_000, "one"), (2_000, "two"), (3_000, "three")], first: 200, wrapAt: 2)
        let log = try LegacyLogBuffer.read(vmcoreinfo: v, reader: m.reader(wordSize: 4))
        #expect(log.records.map { String(decoding: $0.text, as: UTF8.self) } == ["one", "two", "three"])
        #expect(log.records.map(\.timestamp) == [1_000, 2_000, 3_000])
        #expect(log.records.first?.level == 6)
    }

    @Test func aRecordThatDoesNotFitStopsTheReadWithANote() throws {
        let (m, v) = Self.memory([(1, "one"), (2, "two")])
        m.write(Self.buffer + 8, [0x2c, 0x01])    // the first record claims 300 bytes of 256
        let log = try LegacyLogBuffer.read(vmcoreinfo: v, reader: m.reader(wordSize: 4))
        #expect(log.records.isEmpty)
        #expect(log.notes.first?.contains("does not fit") == true)
    }

    @Test func indexesOutsideTheBufferAreRefused() {
        let (m, v) = Self.memory([(1, "one")])
        m.write32(Self.vars + 8, 4096)
        #expect(throws: KernelDataError.self) { try LegacyLogBuffer.read(vmcoreinfo: v, reader: m.reader(wordSize: 4)) }
    }
}
