@testable import GuestKernel
import VCPUContext

/// Guest memory built in the test: pages by frame, read with the MMU off (virtual =
/// physical), so kernel tables can be laid out at kernel addresses.
final class TestMemory: FrameSource, @unchecked Sendable {
    var pages: [UInt64: [UInt8]] = [:]
    func page(_ frame: UInt64) -> UnsafeRawBufferPointer? {
        guard let p = pages[frame] else { return nil }
        return p.withUnsafeBytes { UnsafeRawBufferPointer(start: $0.baseAddress, count: $0.count) }
    }
    func whyMissing(_ frame: UInt64) -> String { "frame 0x\(String(frame, radix: 16)) is not in the test memory" }

    func write(_ va: UInt64, _ bytes: [UInt8]) {
        for (i, b) in bytes.enumerated() {
            let a = va &+ UInt64(i)
            var p = pages[a >> 12] ?? [UInt8](repeating: 0, count: 4096)
            p[Int(a & 0xfff)] = b
            pages[a >> 12] = p
        }
    }
    func write32(_ va: UInt64, _ v: UInt32) { write(va, (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) }) }
    func write64(_ va: UInt64, _ v: UInt64) { write(va, (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) }) }
    func word(_ va: UInt64, _ v: UInt64, width: Int) { width == 8 ? write64(va, v) : write32(va, UInt32(truncatingIfNeeded: v)) }

    func reader(wordSize: Int = 8) -> KernelReader {
        KernelReader(memory: GuestMemory(frames: self, translation: .identity), wordSize: wordSize)
    }
}
