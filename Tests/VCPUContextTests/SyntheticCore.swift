import Foundation
@testable import VCPUContext

/// Builds small `xl dump-core` files in the layout xg_core.c writes, for malformed-input
/// tests (truncations, bit flips, bad sizes) without shipping more real cores.
struct SyntheticCore {
    var machine: UInt16 = XenCoreLayout.emARM
    var magic: UInt64 = XenCoreLayout.magicHVM
    var entrySize = 352
    var contexts: [[UInt8]] = [[UInt8](repeating: 0, count: 352)]
    /// (pfn, page bytes)
    var pages: [(UInt64, [UInt8])] = [(0x40000, [UInt8](repeating: 0xab, count: 4096))]
    var formatVersion: UInt64 = 1

    func bytes() -> [UInt8] {
        var w = DumpCoreWriter(machine: machine, magic: magic, entrySize: entrySize, contexts: contexts,
                               frames: pages.map { (pfn: $0.0, gmfn: $0.0) })
        w.formatVersion = formatVersion
        return w.bytes { pages[$0].1 }
    }

}

func le16(_ v: UInt16) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
func le32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
func le64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }

func temporaryPath(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("xenctx-swift-tests-\(getpid())")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
}

/// Opens `bytes` as a core file.
func openCore(_ bytes: [UInt8], name: String = UUID().uuidString) throws(CoreError) -> XenCore {
    let path = temporaryPath(name)
    try! Data(bytes).write(to: URL(fileURLWithPath: path))
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try XenCore(path: path)
}
