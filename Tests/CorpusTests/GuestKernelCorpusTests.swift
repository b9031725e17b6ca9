import Foundation
import GuestKernel
import Symbols
import Testing
import VCPUContext

/// VMCOREINFO, kallsyms and the log read from the corpus's full-RAM cores.
@Suite(.serialized)
struct GuestKernelCorpusTests {
    static let fullRAM = ["x86-run1-lab-crash", "x86-run2-lab-crash-cpu1", "x86-run3-lab-crash-cpu1-savecore",
                          "arm-full-a64-crash", "arm-full-a32-crash", "arm-full-a32-crash-smp-bootoops1"]

    static func kernel(_ name: String) throws -> GuestKernel {
        let c = Corpus.named(name)
        let guest = try Guest(core: XenCore(path: try Corpus.corePath(c)))
        return try #require(GuestKernel(guest: guest))
    }

    @Test(arguments: fullRAM)
    func vmcoreinfoIsFound(_ name: String) throws {
        let k = try Self.kernel(name)
        let located = try k.vmcoreinfo.get()
        print(name, located.how, located.pagesScanned, k.locateTime)
        #expect(located.info.osRelease == Corpus.named(name).kernel)
        #expect(located.info.pageSize == 4096)
        #expect(located.info.buildID?.count == 40)
    }
}

extension GuestKernelCorpusTests {
    @Test(arguments: fullRAM)
    func explore(_ name: String) throws {
        let c = Corpus.named(name)
        let k = try Self.kernel(name)
        let sym = k.symbols()
        switch sym {
        case .failure(let e): print(name, "kallsyms failed:", e)
        case .success(let s):
            print(name, s.how, s.encoding, s.map.symbols.count, s.time)
            let map = try SystemMap.load(path: try Corpus.mapPath(c))
            let ours = Set(s.map.symbols.map { "\($0.address) \($0.name)" })
            let theirs = Set(map.symbols.map { "\($0.address) \($0.name)" })
            let onlyMap = theirs.subtracting(ours), onlyOurs = ours.subtracting(theirs)
            print("  only in map:", onlyMap.count, Array(onlyMap.prefix(12)))
            print("  only in kallsyms:", onlyOurs.count, Array(onlyOurs.prefix(12)))
            if let reader = KernelReader(guest: k.guest) {
                let found = Result { try KallsymsFinder.locate(guest: k.guest, reader: reader) }
                print("  finder:", (try? found.get().tables == s.tables) as Any, found)
            }
        }
        switch k.log(symbols: try? sym.get().map) {
        case .failure(let e): print(name, "log failed:", e)
        case .success(let log):
            print(name, log.source, log.records.count, log.skipped, log.notes)
            for r in log.records.prefix(3) { print("   ", r.timestamp, String(decoding: r.text, as: UTF8.self)) }
        }
    }
}
