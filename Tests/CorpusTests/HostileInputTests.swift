import Foundation
import Testing

/// The outside fuzzing run's findings (issue #12), each as a fixture made from a corpus core
/// by patching bytes: one clear message, the documented exit status, no raw control byte
/// on the terminal, no blocking and no unbounded copy.
@Suite(.serialized)
struct HostileInputTests {
    /// Control characters other than newline and tab: what a terminal would act on.
    static func hasRawControl(_ s: String) -> Bool {
        s.unicodeScalars.contains { ($0.value < 0x20 && $0.value != 0x0a && $0.value != 0x09) || $0.value == 0x7f || (0x80...0x9f).contains($0.value) }
    }

    /// A copy of a case's core with `patch` applied to its bytes.
    func patched(_ name: String, as label: String, _ patch: (inout Data) throws -> Void) throws -> String {
        let c = Corpus.named(name)
        var data = try Data(contentsOf: URL(fileURLWithPath: try Corpus.corePath(c)))
        try patch(&data)
        let path = Corpus.cache.appendingPathComponent("\(name)/hostile-\(label).core").path
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    func firstRange(of needle: String, in data: Data) throws -> Range<Data.Index> {
        try #require(data.range(of: Data(needle.utf8)))
    }

    @Test func sectionNamesAreEscaped() throws {
        let core = try patched("arm-run1-a32-crash", as: "shstrtab-esc") { d in
            let r = try firstRange(of: ".note.Xen", in: d)
            d[r.lowerBound + 1] = 0x1b
        }
        let r = try Tool.run(["--core", core])
        #expect(r.status == 2)
        #expect(r.stderr.contains("\\x1bote.Xen"), "\(r.stderr)")
        #expect(!Self.hasRawControl(r.stderr + r.stdout))
    }

    @Test func xenVersionStringsAreEscapedUnderDescribe() throws {
        let core = try patched("arm-run1-a64-crash", as: "caps-esc") { d in
            let r = try firstRange(of: "xen-3.0-aarch64", in: d)
            d[r.lowerBound + 3] = 0x1b
            d[r.lowerBound + 5] = 0x07
        }
        let r = try Tool.run(["--core", core, "--describe"])
        #expect(r.stdout.contains("xen\\x1b3\\x070-aarch64"), "\(r.stdout)")
        #expect(!Self.hasRawControl(r.stderr + r.stdout))
    }

    @Test func aHugeNoteSectionIsRefusedNotCopied() throws {
        let core = try patched("arm-run1-a64-crash", as: "huge-note") { d in
            // Section headers: find .note.Xen's by its name offset in .shstrtab.
            let shoff = Int(d[40..<48].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
            let shnum = Int(d[60]) | Int(d[61]) << 8, shstrndx = Int(d[62]) | Int(d[63]) << 8
            func u64(_ o: Int) -> Int { Int(d[o..<(o + 8)].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }) }
            let strtab = u64(shoff + shstrndx * 64 + 24)
            for i in 0..<shnum {
                let nameOffset = Int(d[shoff + i * 64]) | Int(d[shoff + i * 64 + 1]) << 8
                if d[(strtab + nameOffset)...].starts(with: Data(".note.Xen".utf8)) {
                    d.replaceSubrange((shoff + i * 64 + 32)..<(shoff + i * 64 + 40), with: [0, 0, 0, 0x80, 0, 0, 0, 0])
                }
            }
        }
        let clock = ContinuousClock()
        var r: Tool.Result? = nil
        let t = try clock.measure { r = try Tool.run(["--core", core], timeout: 30) }
        #expect(r?.status == 2)
        #expect(r?.stderr.contains(".note.Xen claims 2147483648 bytes") == true, "\(r?.stderr ?? "")")
        #expect(t < .seconds(10))   // refused before any copy (it took 19.5 s and 4.2 GB before)
    }

    @Test func specialFilesAreRefusedWithoutBlocking() throws {
        let fifo = FileManager.default.temporaryDirectory.appendingPathComponent("xenctx-hostile-fifo-\(getpid())").path
        unlink(fifo)
        try #require(mkfifo(fifo, 0o600) == 0)
        defer { unlink(fifo) }
        let core = try Corpus.corePath(Corpus.named("arm-run1-a64-crash"))
        for args in [["--core", fifo], ["-s", fifo, "--core", core], ["--vmlinux", fifo, "--core", core]] {
            let r = try Tool.run(args, timeout: 20)
            #expect(r.status == 2 && r.stderr.contains("it is a FIFO"), "\(args): \(r.status) \(r.stderr)")
        }
        let zero = try Tool.run(["-s", "/dev/zero", "--core", core], timeout: 20)
        #expect(zero.status == 2 && zero.stderr.contains("it is a character device, not a symbol table"), "\(zero.stderr)")
        let sparse = FileManager.default.temporaryDirectory.appendingPathComponent("xenctx-hostile-1t-\(getpid())").path
        try #require(FileManager.default.createFile(atPath: sparse, contents: nil))
        defer { unlink(sparse) }
        try #require(truncate(sparse, 1 << 40) == 0)
        let big = try Tool.run(["-s", sparse, "--core", core], timeout: 20)
        #expect(big.status == 2 && big.stderr.contains("larger than a symbol table can be"), "\(big.stderr)")
        // procfs says 0 bytes for /proc/kallsyms: it was "no symbol lines", as if the file were wrong.
        let proc = try Tool.run(["-s", "/proc/kallsyms", "--core", core], timeout: 20)
        #expect(proc.status == 2 && proc.stderr.contains("/proc/kallsyms: a file of procfs, whose size reads as 0"), "\(proc.stderr)")
    }

    /// A System.map followed by 246 MB of NULs was accepted as one long skipped line (1.5 s,
    /// 550 MB RSS, exit 0): it is refused where its text ends, at the cost of its text.
    @Test func zeroPaddedSystemMapIsRefusedWhereItsTextEnds() throws {
        let c = Corpus.named("arm-run1-a64-crash")
        let map = try Data(contentsOf: URL(fileURLWithPath: try Corpus.mapPath(c)))
        let padded = FileManager.default.temporaryDirectory.appendingPathComponent("xenctx-hostile-nulmap-\(getpid())").path
        try #require(FileManager.default.createFile(atPath: padded, contents: map))
        defer { unlink(padded) }
        try #require(truncate(padded, off_t(map.count + (246 << 20))) == 0)
        let r = try Tool.run(["-s", padded, "--core", try Corpus.corePath(c)], timeout: 20)
        #expect(r.status == 2 && r.stderr.contains("a NUL byte at offset \(map.count) of its \(map.count + (246 << 20)) bytes"), "\(r.status) \(r.stderr)")
    }

    /// The task lists are checked against the kernel's own count: with nr_threads one more
    /// than the 68 the lists hold (patched in a copy of the core), --tasks says so and exits 1.
    @Test func aTaskListShorterThanTheKernelsCountIsAProblem() throws {
        let c = Corpus.named("x86-run10-pv612-crash-tasks")
        let map = try Corpus.mapPath(c)
        let words = try Tool.run(["--core", try Corpus.corePath(c), "-s", map, "-m", "nr_threads", "-l", "4"])
        // `-m` prints the words as hex: the same bytes, little-endian, are unique in the core.
        let values = words.stdout.split(separator: "\n").dropFirst().first.map { $0.split(separator: " ").compactMap { UInt64($0, radix: 16) } } ?? []
        try #require(values.count == 4 && values[0] == 68, "\(words.stdout)")
        let needle = Data(values.flatMap { v in (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } })
        let core = try patched(c.name, as: "nr-threads") { d in
            let r = try #require(d.range(of: needle))
            d[r.lowerBound] = 69
        }
        let r = try Tool.run(["--core", core, "--tasks"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("the kernel counts 69 threads (nr_threads), the task lists hold 68"), "\(r.stderr)")
    }

    /// The printk ring's descriptor array pointer made absurd (patched in a copy of the
    /// core): the log was empty with exit 0; it is no log, and says which record failed.
    @Test func aRingWithAnAbsurdDescriptorPointerIsNoLog() throws {
        let c = Corpus.named("x86-run10-pv612-crash-tasks")
        let core0 = try Corpus.corePath(c), map = try Corpus.mapPath(c)
        func words(_ at: String) throws -> [UInt64] {
            let r = try Tool.run(["--core", core0, "-s", map, "-m", at, "-l", "4"])
            return r.stdout.split(separator: "\n").dropFirst().first.map { $0.split(separator: " ").compactMap { UInt64($0, radix: 16) } } ?? []
        }
        // prb points to the ring: count_bits, descs, infos, head_id lead it.
        let rb = try #require(try words("prb").first)
        let ring = try words(String(rb, radix: 16))
        try #require(ring.count == 4 && ring[1] >> 48 == 0xffff, "\(ring)")
        let needle = Data(ring.flatMap { v in (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } })
        let core = try patched(c.name, as: "prb-descs") { d in
            let r = try #require(d.range(of: needle))
            d.replaceSubrange(r.lowerBound + 8..<r.lowerBound + 16, with: [0, 0, 0, 0, 0xad, 0xde, 0x00, 0x00])
        }
        let r = try Tool.run(["--core", core, "--log"])
        #expect(r.status != 0 && r.stdout.isEmpty)
        #expect(r.stderr.contains("no kernel log: no record could be read from the printk ring buffer at ffffffff82c5c3a0"), "\(r.stderr)")
        let j = try Tool.run(["--core", core, "--log", "--json"])
        #expect(j.status == 1 && j.stdout.contains("no kernel log: no record could be read"), "\(j.status)")
    }

    /// kallsyms_offsets partly overwritten with 0xff (in a copy of the core): frames were
    /// left unnamed, or named wrong, with exit 0 and no word. The table is refused for being
    /// out of order, and the report says it has no symbols and why.
    @Test func damagedKallsymsOffsetsAreRefusedAndSaid() throws {
        let c = Corpus.named("x86-run10-pv612-crash-tasks")
        let r0 = try Tool.run(["--core", try Corpus.corePath(c), "-s", try Corpus.mapPath(c), "-m", "kallsyms_offsets", "-l", "4"])
        let values = r0.stdout.split(separator: "\n").dropFirst().first.map { $0.split(separator: " ").compactMap { UInt64($0, radix: 16) } } ?? []
        try #require(values.count == 4, "\(r0.stdout)")
        let needle = Data(values.flatMap { v in (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } })
        let core = try patched(c.name, as: "kallsyms-ff") { d in
            let r = try #require(d.range(of: needle))
            d.replaceSubrange(r.lowerBound..<r.lowerBound + 256, with: [UInt8](repeating: 0xff, count: 256))
        }
        let r = try Tool.run(["--core", core, "-C"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("warning: no symbols: the guest's own kallsyms could not be read (kallsyms: the addresses go back at symbol 64"), "\(r.stderr)")
    }

    @Test func pathsFromTheCommandLineAreEscaped() throws {
        let r = try Tool.run(["--core", "/nonexistent/\u{1b}]0;pwned\u{07}core"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("\\x1b]0;pwned\\x07core"), "\(r.stderr)")
        #expect(!Self.hasRawControl(r.stderr))
    }

    @Test func filesGivenForTheWrongOptionSaySo() throws {
        let core = try Corpus.corePath(Corpus.named("arm-run1-a64-crash"))
        let mapIsCore = try Tool.run(["-s", core, "--core", core])
        #expect(mapIsCore.status == 2 && mapIsCore.stderr.contains("is not a symbol table: it is an ELF file"), "\(mapIsCore.stderr)")
        let vmlinuxIsCore = try Tool.run(["--vmlinux", core, "--core", core])
        #expect(vmlinuxIsCore.status == 2 && vmlinuxIsCore.stderr.contains("it is a core file (ELF ET_CORE)"), "\(vmlinuxIsCore.stderr)")
        let prose = try Tool.run(["-s", Corpus.corpus.appendingPathComponent("README.md").path, "--core", core])
        #expect(prose.status == 2 && (prose.stderr.contains("is not a symbol table") || prose.stderr.contains("has no symbol lines")), "\(prose.stderr)")
    }

    /// A map without _stext/_etext cannot say what kernel text is: the trace would vanish.
    @Test func mapWithoutTextMarkersIsAWarning() throws {
        let x86 = Corpus.named("x86-run1-lab-crash")
        let path = Corpus.cache.appendingPathComponent("maps/\(x86.kernel).notext.System.map").path
        let lines = try String(contentsOfFile: try Corpus.mapPath(x86), encoding: .utf8).split(separator: "\n")
            .filter { !$0.hasSuffix(" _stext") && !$0.hasSuffix(" _etext") }
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let r = try Tool.run(["--core", try Corpus.corePath(x86), "-s", path, "--unwind", "auto", "-l", "0"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("has no _stext/_etext"))
        #expect(r.stdout.contains("panic+0x286 (orc)"))   // the guest's own names instead
    }
}
