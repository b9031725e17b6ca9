import Foundation
import Testing
import VCPUContext

/// Guest memory made hostile where the content searches look (issue #28), in copies of real
/// cores: the searches for VMCOREINFO, BTF and kallsyms must cost a bounded amount per byte
/// whatever the guest holds, and still find the real thing or say why not. The same
/// patches, timed on a release build, are `Benchmarks/hostile.py`; these tests hold the
/// outcome, and a time bound an unbounded search would exceed many times over.
@Suite(.serialized)
struct HostileSearchTests {
    /// A copy of `c`'s core with `pages` guest pages from `va` (translated through vCPU 0's
    /// page tables) overwritten with `fill`.
    func patched(_ c: Corpus.Case, as label: String, va: UInt64, pages: Int, fill: [UInt8]) throws -> String {
        let original = try Corpus.corePath(c)
        let guest = try Guest(core: XenCore(path: original))
        let frames = try #require(guest.frames as? CoreFrames)
        let translation = Translation.of(guest.vcpus[0].registers, guest: guest.description)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: original))
        for i in 0..<pages {
            let pa = try translation.translate(va + UInt64(i * 4096), frames: frames)
            let at = Int(try #require(frames.fileOffset(of: pa >> 12)))
            bytes.replaceSubrange(at..<(at + 4096), with: fill[(i * 4096)..<((i + 1) * 4096)])
        }
        let path = Corpus.cache.appendingPathComponent("\(c.name)/hostile-search-\(label).core").path
        try bytes.write(to: URL(fileURLWithPath: path))
        return path
    }

    func symbol(_ c: Corpus.Case, _ name: String) throws -> UInt64 {
        let map = try String(contentsOfFile: try Corpus.mapPath(c), encoding: .utf8)
        let line = try #require(map.split(separator: "\n").first { $0.hasSuffix(" \(name)") })
        return try #require(UInt64(line.prefix(while: { $0 != " " }), radix: 16))
    }

    func timed(_ args: [String]) throws -> (Tool.Result, Duration) {
        var r: Tool.Result? = nil
        let t = try ContinuousClock().measure { r = try Tool.run(args, timeout: 120) }
        return (try #require(r), t)
    }

    /// .bss above vmcoreinfo_data filled with "OSRELEASE=A\n" (the search goes down from
    /// the image's end, so each occurrence came first as a candidate of up to 64 KiB: 113 s).
    @Test func osreleaseLinesAboveTheRealTextCostLittle() throws {
        let c = Corpus.named("x86-run10-pv612-crash-tasks")
        let start = (try symbol(c, "vmcoreinfo_data") & ~0xfff) + 4096
        let fill = Array(String(repeating: "OSRELEASE=A\n", count: 160 * 4096 / 12 + 1).utf8.prefix(160 * 4096))
        let core = try patched(c, as: "osrelease", va: start, pages: 160, fill: fill)
        let (r, t) = try timed(["--core", core, "--describe"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("6.12.118+deb13-amd64"), "\(r.stdout)")
        #expect(t < .seconds(30), "\(t)")
    }

    /// 64 KiB of 16-byte BTF headers claiming 8 MiB each below the real BTF (each was read
    /// and parsed; 7.6 s in a release build): none follows the kernel's own section rules,
    /// so the real BTF is found as before.
    @Test func btfHeadersBeforeTheRealOneAreCheapToRefuse() throws {
        let c = Corpus.named("arm-tasks-a64-crash")
        let start = (try symbol(c, "__start_BTF") & ~0xfff) - 16 * 4096
        let header: [UInt8] = [0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0]
        let core = try patched(c, as: "btf-magic", va: start, pages: 16, fill: Array([[UInt8]](repeating: header, count: 16 * 4096 / 16).joined()))
        let (r0, _) = try timed(["--core", try Corpus.corePath(c), "--tasks", "--stack"])
        let (r, t) = try timed(["--core", core, "--tasks", "--stack"])
        #expect(r.status == r0.status && r.stdout == r0.stdout, "\(r.stderr)")
        #expect(r.stdout.contains("__switch_to"))
        #expect(t < .seconds(30), "\(t)")
    }

    /// The kallsyms search by content (5.10's VMCOREINFO names no kallsyms) over 1 MiB of
    /// copies of the guest's own token table and index below the real tables: each copy was
    /// a candidate with up to 45 MiB searched below it (25 s in a release build). The search
    /// now gives up after 96 MiB in all (48 copies: the markers are looked for within 2 MiB
    /// below each), and says so.
    @Test func copiesOfTheTokenTableEndInAClearError() throws {
        let c = Corpus.named("x86-run10-pv510-crash-tasks")
        let table = try symbol(c, "kallsyms_token_table")
        let tokens = try tokenTableAndIndex(c, at: table)
        let start = (try symbol(c, "kallsyms_offsets") & ~0xfff) - 256 * 4096
        let fill = Array([[UInt8]](repeating: tokens, count: 256 * 4096 / tokens.count + 1).joined().prefix(256 * 4096))
        let core = try patched(c, as: "kallsyms", va: start, pages: 256, fill: fill)
        let (r, t) = try timed(["--core", core, "-C"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("no symbols: the guest's own kallsyms could not be read (kallsyms: gave up after"), "\(r.stderr)")
        #expect(t < .seconds(60), "\(t)")
    }

    /// The same 1 MiB as runs of u32 0, 512, 1024 (each a kallsyms_markers candidate, with
    /// 150 000 names positions tried below it: 48 s) and one copy of the token table on top:
    /// the candidate fails within its work bound and the real tables are found above it.
    @Test func markersLikeRunsBelowACopyAreBounded() throws {
        let c = Corpus.named("x86-run10-pv510-crash-tasks")
        let tokens = try tokenTableAndIndex(c, at: try symbol(c, "kallsyms_token_table"))
        let start = (try symbol(c, "kallsyms_offsets") & ~0xfff) - 256 * 4096
        let run: [UInt8] = [0, 0, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0]
        let fill = Array([[UInt8]](repeating: run, count: 256 * 4096 / 12 + 1).joined().prefix(256 * 4096 - tokens.count)) + tokens
        let core = try patched(c, as: "markers", va: start, pages: 256, fill: fill)
        let (r, t) = try timed(["--core", core, "-C"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("sysrq_handle_crash"), "\(r.stdout)")
        #expect(t < .seconds(60), "\(t)")
    }

    /// 4 KiB from the token table (the table and its index), as the tool reads them.
    func tokenTableAndIndex(_ c: Corpus.Case, at table: UInt64) throws -> [UInt8] {
        let r = try Tool.run(["--core", try Corpus.corePath(c), "-s", try Corpus.mapPath(c), "-m", String(table, radix: 16), "-l", "128"])
        let words = r.stdout.split(separator: "\n").dropFirst().flatMap { $0.split(separator: " ").compactMap { UInt64($0, radix: 16) } }
        try #require(words.count == 512, "\(r.stdout.prefix(200))")
        return words.flatMap { w in (0..<8).map { UInt8(truncatingIfNeeded: w >> (8 * $0)) } }
    }
}
