import Foundation
import Testing
@testable import VCPUContext

/// Bad input gets one typed error naming what is wrong, never a crash or garbage.
struct MalformedCoreTests {
    let good = SyntheticCore().bytes()

    @Test func syntheticCoreIsValid() throws {
        let core = try openCore(good)
        #expect(core.vcpuEntryCount == 1)
        #expect(core.truncation == nil)
        let frames = CoreFrames(core: core)
        #expect(frames.availableCount == 1)
        #expect(frames.page(0x40000)?.first == 0xab)
        #expect(frames.page(0x40001) == nil)
    }

    func expectError(_ bytes: [UInt8], _ kind: CoreError.Kind, mentioning text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try openCore(bytes)
            Issue.record("no error", sourceLocation: sourceLocation)
        } catch {
            #expect(error.kind == kind, "\(error)", sourceLocation: sourceLocation)
            #expect(error.detail.contains(text), "\(error.detail)", sourceLocation: sourceLocation)
        }
    }

    @Test func emptyFile() { expectError([], .empty, mentioning: "empty") }

    @Test func notELF() { expectError(Array("hello, this is a text file\n".utf8), .notELF, mentioning: "not an ELF file") }

    /// A compressed core is named as such, with the command that opens it.
    @Test func compressedCore() {
        expectError([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00] + [UInt8](repeating: 0, count: 58), .notELF, mentioning: "xz-compressed, not a core as such: decompress it first (xz -dk FILE)")
        expectError([0x1f, 0x8b, 8, 0] + [UInt8](repeating: 0, count: 60), .notELF, mentioning: "gzip-compressed")
        expectError([0x28, 0xb5, 0x2f, 0xfd] + [UInt8](repeating: 0, count: 60), .notELF, mentioning: "zstd-compressed")
    }

    @Test func legacyXcCore() { expectError(le32(0xF00F_EBED) + [UInt8](repeating: 0, count: 60), .unsupported, mentioning: "pre-ELF") }

    @Test func truncatedELFHeader() { expectError(Array(good.prefix(40)), .truncated, mentioning: "shorter than an ELF header") }

    @Test func executableInsteadOfCore() {
        var b = good
        b[16] = 2
        expectError(b, .notXenCore, mentioning: "executable")
    }

    @Test func flippedSectionHeaderSize() {
        var b = good
        b[58] ^= 0x10
        expectError(b, .malformed, mentioning: "section header size")
    }

    @Test func sectionTableBeyondEnd() {
        var b = good
        b.replaceSubrange(40..<48, with: le64(UInt64(b.count)))
        expectError(b, .truncated, mentioning: "section header table")
    }

    @Test func prstatusBeyondEnd() {
        // Move .xen_prstatus (section 3) past the end of the file.
        var b = good
        let sh = 64 + 3 * 64
        b.replaceSubrange((sh + 24)..<(sh + 32), with: le64(UInt64(b.count) + 4096))
        expectError(b, .truncated, mentioning: ".xen_prstatus")
    }

    @Test func entrySizeOfNoLayout() {
        var core = SyntheticCore()
        core.entrySize = 300
        core.contexts = [[UInt8](repeating: 0, count: 300)]
        expectError(core.bytes(), .unsupported, mentioning: "entry size is 300")
    }

    @Test func vcpuCountDisagreesWithSection() {
        var b = good
        // The header note's descriptor starts after the 16-byte NONE note and a 16-byte note header.
        let noteOffset = 64 + 6 * 64
        b.replaceSubrange((noteOffset + 32 + 8)..<(noteOffset + 32 + 16), with: le64(3))
        expectError(b, .malformed, mentioning: "declares 3 vCPUs")
    }

    @Test func unknownFormatVersion() {
        var core = SyntheticCore()
        core.formatVersion = 2
        expectError(core.bytes(), .unsupported, mentioning: "format version")
    }

    /// Every prefix of a core either opens (with a truncation note when sections are cut)
    /// or fails with a typed error; nothing traps.
    @Test func everyTruncationIsHandled() throws {
        for length in stride(from: 0, through: good.count, by: 97) {
            do {
                let core = try openCore(Array(good.prefix(length)))
                if length < good.count { #expect(core.truncation != nil, "length \(length)") }
                _ = try Guest(core: core)
            } catch {
                #expect(!error.detail.isEmpty)
            }
        }
    }

    /// Flipping any single byte of the headers, notes and contexts never traps.
    @Test func everyByteFlipIsHandled() throws {
        for i in 0..<min(good.count, 4096) {
            var b = good
            b[i] ^= 0xff
            do {
                let core = try openCore(b, name: "flip")
                let guest = try Guest(core: core)
                _ = guest.vcpus.map { StackPointerChoice.choose($0.registers, guest: guest.description) }
            } catch {
                #expect(!error.detail.isEmpty)
            }
        }
    }

    @Test func armCoreWithoutRAMSaysSo() throws {
        var core = SyntheticCore()
        core.pages = [(XenCoreLayout.invalidFrame, [UInt8](repeating: 0, count: 4096))]
        let guest = try Guest(core: try openCore(core.bytes()))
        #expect(guest.frames == nil)
        #expect(guest.warnings.contains { $0.contains("holds registers only") })
    }
}
