import Foundation
import FuzzTargets
import Testing

/// The fuzz harness on every build: seeds cut from the real cases, and each target run
/// over its seeds (what `Scripts/fuzz.sh` starts from, and a guard that the harness works).
@Suite(.serialized)
struct FuzzSeedTests {
    @Test func everyTargetRunsOverSeedsFromRealCases() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("xenctx-seeds-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cores = try ["x86-run1-lab-crash", "arm-full-a64-crash", "arm-full-a32-crash"].map { try Corpus.corePath(Corpus.named($0)) }
        let maps = try ["x86-run1-lab-crash", "arm-full-a64-crash"].map { try Corpus.mapPath(Corpus.named($0)) }
        let written = try Seeds.make(cores: cores, maps: maps, into: dir)
        #expect(written >= 20)
        for target in FuzzTargets.names {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: "\(dir)/\(target)")) ?? []
            #expect(!files.isEmpty, "no seeds for \(target)")
            for f in files {
                let data = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(target)/\(f)"))
                data.withUnsafeBytes { FuzzTargets.run(target, $0) }
            }
        }
        // The core seed is a real slice: the report it gives reads the same stack.
        let seed = "\(dir)/core/lab-crash.core"
        let r = try Tool.run(["--core", seed, "--unwind", "scan", "-l", "1"])
        #expect(r.stdout.contains("[<ffffffff81a442b5>] <--"))
    }
}
