import Foundation
import Testing

/// Which Xen libraries the live path opens: a dom0 of Xen 4.17 (bookworm) or 4.20 (trixie)
/// works, whichever the binary was built against (their interfaces the bridge uses are the
/// same); a dom0 without them gets an error that names what was looked for.
struct LiveLibraryTests {
    /// Xen 4.20's sonames alone: the report equals the core's, and `--save-core` of an x86
    /// guest finds xc_domain_dumpcore in libxenguest.so.4.20.
    @Test(arguments: ["arm-full-a64-crash", "x86-run1-lab-crash"])
    func xen420Sonames(_ name: String) throws {
        let dir = try XenStandIn.libraryDirectory(named: ["libxenctrl.so.4.20", "libxenforeignmemory.so.1", "libxenguest.so.4.20"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let domain = try XenStandIn.Domain(name)
        let live = try domain.run(["-C", "{domid}"], environment: ["XENCTX_XEN_LIBDIR": dir])
        let core = try Tool.run(["-C", "--core", domain.core])
        #expect(live.result.status == 0, "\(live.result.stderr)")
        #expect(live.result.stdout == core.stdout)
        #expect(live.pauses == 1 && live.pauseCount == 0, "\(live.events)")

        let saved = dir + "/saved.core"
        let save = try domain.run(["--save-core", saved, "{domid}"], environment: ["XENCTX_XEN_LIBDIR": dir])
        #expect(save.result.status == 0, "\(save.result.stderr)")
        #expect(try Tool.run(["-C", "--core", saved]).stdout == core.stdout)
    }

    /// No libxenctrl of a known release: exit 2 and the sonames tried, before any pause.
    @Test func missingLibrariesAreNamed() throws {
        let dir = try XenStandIn.libraryDirectory(named: ["libxenforeignmemory.so.1"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let domain = try XenStandIn.Domain("x86-run1-lab-crash")
        let r = try domain.run(["-C", "{domid}"], environment: ["XENCTX_XEN_LIBDIR": dir])
        #expect(r.result.status == 2)
        #expect(r.result.stderr.contains("Xen's libraries are missing: cannot load libxenctrl (tried libxenctrl.so.4.20, libxenctrl.so.4.17)"), "\(r.result.stderr)")
        #expect(r.result.stdout.isEmpty && r.pauses == 0)
    }
}

/// Mapping a guest frame is a hypercall: a report maps runs of consecutive frames together.
/// Before read-ahead (2026-12-06) each page took its own mapping: 7 320 for `-C` on
/// arm-full-a64-crash, 6 202 on arm-full-a32-crash, 3 359 on x86-run1-lab-crash.
struct LiveReadAheadTests {
    @Test(arguments: ["arm-full-a64-crash", "arm-full-a32-crash", "x86-run1-lab-crash"])
    func fewMappingsPerPage(_ name: String) throws {
        let domain = try XenStandIn.Domain(name)
        let r = try domain.run(["--describe", "-C", "{domid}"])
        let line = try #require(r.result.stdout.split(separator: "\n").first { $0.contains(" copied in ") && $0.hasSuffix("(runs of consecutive frames are mapped together)") })
        let words = line.split(separator: " ")
        let pages = try #require(Int(words[1])), mappings = try #require(Int(words[8]))
        #expect(pages > 3000 && mappings * 5 < pages, "\(line)")
        #expect(r.pauses == 1 && r.pauseCount == 0)
    }
}
