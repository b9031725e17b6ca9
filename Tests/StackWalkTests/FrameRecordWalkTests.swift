import Testing
import VCPUContext
@testable import StackWalk

/// Guest stacks are hostile: every walk must end promptly with a reason.
struct ArrayMemory: StackMemory {
    var words: [UInt64: UInt64] = [:]
    func word(_ address: UInt64, width: Int) throws(MemoryFault) -> UInt64 {
        guard let w = words[address] else { throw MemoryFault(address: address, reason: "unmapped in test") }
        return w
    }
}

struct FrameRecordWalkTests {
    @Test func healthyChain() {
        var m = ArrayMemory()
        m.words[0x1010] = 0x1040; m.words[0x1018] = 0xffff_ffff_8100_0001
        m.words[0x1040] = 0;      m.words[0x1048] = 0
        var records: [FrameRecord] = []
        let stop = FrameRecordWalk(width: 8, limit: 0x2000).walk(memory: m, sp: 0x1000, fp: 0x1010) { records.append($0) }
        #expect(stop == .endOfChain)
        #expect(records.map(\.returnAddress) == [0xffff_ffff_8100_0001, nil])
    }

    @Test func cycleIsDetected() {
        var m = ArrayMemory()
        m.words[0x1010] = 0x1030; m.words[0x1018] = 1
        m.words[0x1030] = 0x1010; m.words[0x1038] = 2      // points back
        let stop = FrameRecordWalk(width: 8, limit: 0x2000).walk(memory: m, sp: 0x1000, fp: 0x1010) { _ in }
        #expect(stop == .wentBackwards(frame: 0x1010, position: 0x1040))
    }

    @Test func selfLoopIsDetected() {
        var m = ArrayMemory()
        m.words[0x1010] = 0x1010; m.words[0x1018] = 1
        let stop = FrameRecordWalk(width: 8, limit: 0x2000).walk(memory: m, sp: 0x1000, fp: 0x1010) { _ in }
        #expect(!stop.isNormal)
    }

    @Test func upstreamQuirkModeStillTerminatesOnACycle() {
        var m = ArrayMemory()
        for a in stride(from: UInt64(0x1000), to: 0x3000, by: 8) { m.words[a] = 0x1000 }   // every word points back
        var count = 0
        let walk = FrameRecordWalk(width: 8, limit: 0x3000, frameBelowPosition: .usePosition)
        let stop = walk.walk(memory: m, sp: 0x1000, fp: 0x1000) { _ in count += 1 }
        #expect(stop.isNormal)                            // it reaches the limit, moving up each step
        #expect(count <= 0x2000 / 16)
    }

    @Test func misalignedFrame() {
        let stop = FrameRecordWalk(width: 8, limit: 0x2000).walk(memory: ArrayMemory(), sp: 0x1000, fp: 0x1013) { _ in }
        #expect(stop == .misaligned(frame: 0x1013))
    }

    @Test func unmappedStackPointer() {
        let stop = FrameRecordWalk(width: 8, limit: 0x2000).walk(memory: ArrayMemory(), sp: 0x1000, fp: 0x1010) { _ in }
        guard case .fault(let f) = stop else { Issue.record("expected a fault, got \(stop)"); return }
        #expect(f.address == 0x1010)
    }

    @Test func hundredThousandFrameChainIsCapped() {
        var m = ArrayMemory()
        let n: UInt64 = 100_000
        for i in 0..<n {
            let a = 0x10_0000 + i * 16
            m.words[a] = a + 16
            m.words[a + 8] = 0xffff_ffff_8100_0000 + i
        }
        var count = 0
        let stop = FrameRecordWalk(width: 8, limit: 0x10_0000 + n * 16 + 16).walk(memory: m, sp: 0x10_0000, fp: 0x10_0000) { _ in count += 1 }
        #expect(stop == .tooManyFrames(1024))
        #expect(count == 1024)
    }

    @Test func pointerAuthenticationIsStripped() {
        #expect(stripPointerAuthentication(0x00a8_8000_0812_3456 | (1 << 55), vaBits: 48) == 0xffff_8000_0812_3456)
        #expect(stripPointerAuthentication(0x0012_0000_0040_1000, vaBits: 48) == 0x0000_0000_0040_1000)
    }
}

struct APCSFrameTests {
    /// GCC ARM frames: fp → saved pc; [fp-4] lr, [fp-8] sp, [fp-12] caller's fp.
    @Test func apcsChain() {
        var m = ArrayMemory()
        // inner frame: fp 0xc8001f0c; caller's frame: fp 0xc8001f3c (outermost)
        m.words[0xc800_1f0c - 12] = 0xc800_1f3c; m.words[0xc800_1f0c - 4] = 0xc040_1234
        m.words[0xc800_1f3c - 12] = 0;           m.words[0xc800_1f3c - 4] = 0
        var returns: [UInt64?] = []
        let walk = FrameRecordWalk(width: 4, limit: 0xc800_2000, layout: .apcs)
        let stop = walk.walk(memory: m, sp: 0xc800_1ef0, fp: 0xc800_1f0c) { returns.append($0.returnAddress) }
        #expect(stop == .endOfChain)
        #expect(returns == [0xc040_1234, nil])
    }

    @Test func apcsCycleStops() {
        var m = ArrayMemory()
        m.words[0xc800_1f0c - 12] = 0xc800_1f0c; m.words[0xc800_1f0c - 4] = 0xc040_1234
        let stop = FrameRecordWalk(width: 4, limit: 0xc800_2000, layout: .apcs).walk(memory: m, sp: 0xc800_1ef0, fp: 0xc800_1f0c) { _ in }
        #expect(!stop.isNormal)
    }
}

struct UpstreamLimitTests {
    /// Upstream -f reads one record above the stack limit (an idle vCPU's rbp holding a
    /// task pointer), then stops: still bounded.
    @Test func oneRecordAboveTheLimitThenStop() {
        var m = ArrayMemory()
        m.words[0x9000] = 0x4000; m.words[0x9008] = 0
        var records: [FrameRecord] = []
        let walk = FrameRecordWalk(width: 8, limit: 0x2000, upstreamChecks: true)
        let stop = walk.walk(memory: m, sp: 0x1f00, fp: 0x9000) { records.append($0) }
        #expect(records.map(\.address) == [0x9000])
        #expect(stop == .reachedLimit(0x2000))
        let strict = FrameRecordWalk(width: 8, limit: 0x2000).walk(memory: m, sp: 0x1f00, fp: 0x9000) { _ in Issue.record("visited") }
        #expect(strict == .reachedLimit(0x2000))
    }
}
