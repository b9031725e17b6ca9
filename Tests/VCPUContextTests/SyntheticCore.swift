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
        let pv = magic == XenCoreLayout.magicPV
        let names = ["", ".shstrtab", ".note.Xen", ".xen_prstatus", ".xen_pages", pv ? ".xen_p2m" : ".xen_pfn"]
        var strtab: [UInt8] = [0]
        var nameOffsets: [UInt32] = [0]
        for n in names.dropFirst() { nameOffsets.append(UInt32(strtab.count)); strtab += Array(n.utf8) + [0] }
        let shnum = names.count
        var notes: [UInt8] = []
        func note(_ type: UInt32, _ desc: [UInt8]) {
            notes += le32(4) + le32(UInt32(desc.count)) + le32(type) + Array("Xen\0".utf8) + desc
        }
        note(XenCoreLayout.noteNone, [])
        note(XenCoreLayout.noteHeader, le64(magic) + le64(UInt64(contexts.count)) + le64(UInt64(pages.count)) + le64(4096))
        var version = [UInt8](repeating: 0, count: 1280)
        version[0] = 4; version[8] = 17
        let caps = Array("xen-3.0-aarch64 xen-3.0-armv7l ".utf8)
        version.replaceSubrange(176..<(176 + caps.count), with: caps)
        version.replaceSubrange(1272..<1280, with: le64(4096))
        note(XenCoreLayout.noteXenVersion, version)
        note(XenCoreLayout.noteFormatVersion, le64(formatVersion))

        let noteOffset = 64 + 64 * shnum
        let prOffset = noteOffset + notes.count
        let prSize = contexts.count * entrySize
        let pagesOffset = (prOffset + prSize + 4095) & ~4095
        let indexOffset = pagesOffset + 4096 * pages.count
        let indexSize = pages.count * (pv ? 16 : 8)
        let strOffset = indexOffset + indexSize

        var out = [UInt8](repeating: 0, count: 64)
        out.replaceSubrange(0..<8, with: [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0])
        out[8] = 1
        out.replaceSubrange(16..<18, with: le16(4))
        out.replaceSubrange(18..<20, with: le16(machine))
        out.replaceSubrange(20..<24, with: le32(1))
        out.replaceSubrange(40..<48, with: le64(64))
        out.replaceSubrange(52..<54, with: le16(64))
        out.replaceSubrange(54..<56, with: le16(56))
        out.replaceSubrange(58..<60, with: le16(64))
        out.replaceSubrange(60..<62, with: le16(UInt16(shnum)))
        out.replaceSubrange(62..<64, with: le16(1))
        func shdr(_ i: Int, type: UInt32, offset: Int, size: Int, entsize: Int) -> [UInt8] {
            var h = [UInt8](repeating: 0, count: 64)
            h.replaceSubrange(0..<4, with: le32(nameOffsets[i]))
            h.replaceSubrange(4..<8, with: le32(type))
            h.replaceSubrange(24..<32, with: le64(UInt64(offset)))
            h.replaceSubrange(32..<40, with: le64(UInt64(size)))
            h.replaceSubrange(56..<64, with: le64(UInt64(entsize)))
            return h
        }
        out += [UInt8](repeating: 0, count: 64)
        out += shdr(1, type: 3, offset: strOffset, size: strtab.count, entsize: 0)
        out += shdr(2, type: 7, offset: noteOffset, size: notes.count, entsize: 0)
        out += shdr(3, type: 1, offset: prOffset, size: prSize, entsize: entrySize)
        out += shdr(4, type: 1, offset: pagesOffset, size: 4096 * pages.count, entsize: 4096)
        out += shdr(5, type: 1, offset: indexOffset, size: indexSize, entsize: pv ? 16 : 8)
        out += notes
        for c in contexts { out += c + [UInt8](repeating: 0, count: max(0, entrySize - c.count)) }
        out += [UInt8](repeating: 0, count: pagesOffset - out.count)
        for (_, p) in pages { out += p }
        for (pfn, _) in pages { out += le64(pfn); if pv { out += le64(pfn) } }
        out += strtab
        return out
    }

    func write(to path: String) throws {
        try Data(bytes()).write(to: URL(fileURLWithPath: path))
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
