import Foundation
import Testing

/// Registers that hold kernel addresses are named after the register block (not with
/// `--unwind scan`, which is upstream's output exactly).
struct RegisterNameTests {
    /// A registers-only ARM32 core with its System.map: the banked LRs say where each mode
    /// was entered from, r4 and r6 hold init_task.
    @Test func registersOnlyARM32WithMap() throws {
        let c = Corpus.named("arm-run1-a32-crash")
        let r = try Tool.run(["--core", try Corpus.corePath(c), "-s", try Corpus.mapPath(c), "-C"])
        #expect(r.stdout.contains("\nLR_svc:  c04098c8 arch_cpu_idle+0x3c\n"), "\(r.stdout)")
        #expect(r.stdout.contains("\nr4_usr:  c1610680 init_task\n"))
        let scan = try Tool.run(["--core", try Corpus.corePath(c), "-s", try Corpus.mapPath(c), "-C", "--unwind", "scan"])
        #expect(!scan.stdout.contains("LR_svc:"))
    }

    /// x86_64 with nothing but the core: r14 holds the sysrq op that crashed the guest.
    @Test func x86CrashNamesTheSysrqOp() throws {
        let r = try Tool.run(["--core", try Corpus.corePath(Corpus.named("x86-run1-lab-crash")), "0", "-l", "0"])
        #expect(r.stdout.contains("\nr14:     ffffffff82105f80 sysrq_crash_op\n"), "\(r.stdout)")
    }
}
