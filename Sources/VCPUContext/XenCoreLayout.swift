/// Constants of the `xl dump-core` file format (tools/libs/guest/xg_core.[ch] and public
/// elfnote.h in Xen; see `corpus/README.md` for the format note they were checked against).
public enum XenCoreLayout {
    /// The most `.note.Xen` bytes read (xl writes four notes, about 1.4 KB).
    public static let maxNoteBytes: UInt64 = 64 << 10
    public static let elfHeaderSize = 64
    public static let sectionHeaderSize = 64
    /// Cores written by one toolstack have 6 or 7 sections; anything far beyond is corrupt.
    public static let maxSections = 64

    public static let emX86_64: UInt16 = 62
    public static let em386: UInt16 = 3
    public static let emARM: UInt16 = 40

    public static let magicPV: UInt64 = 0xF00F_EBED
    public static let magicHVM: UInt64 = 0xF00F_EBEE

    public static let noteNone: UInt32 = 0x200_0000
    public static let noteHeader: UInt32 = 0x200_0001
    public static let noteXenVersion: UInt32 = 0x200_0002
    public static let noteFormatVersion: UInt32 = 0x200_0003
    /// xenctx-swift's own note in a core it trimmed (its own name, so Xen's readers skip it):
    /// text saying which views the kept pages serve.
    public static let trimNoteName = "xenctx-swift"
    public static let trimNoteType: UInt32 = 1
    public static let maxTrimNoteBytes = 1024
    /// A second note of a trimmed core: the frames whose pages were all zeros, kept as runs
    /// (frame, count: two little-endian u64s each, ascending, apart) instead of 4 KiB each.
    public static let trimZeroNoteType: UInt32 = 2
    /// At most this many runs (1 MiB of note); zero pages past them are kept as pages.
    public static let maxZeroRuns = 1 << 16
    public static let formatVersion01: UInt64 = 1

    /// `sizeof(vcpu_guest_context_any_t)` of an x86 toolstack (the x86_64 context; a
    /// 32-bit PV guest's compat context sits at the start of each slot).
    public static let x86EntrySize = 5168
    /// ARM `vcpu_guest_context` sizes: Xen ≥ 4.16, 4.4–4.15, ≤ 4.3.
    public static let armEntrySizes = [352, 344, 336]

    public static let pageSize = 4096
    /// `XC_CORE_INVALID_PFN` / `XC_CORE_INVALID_GMFN`: unused trailing slots.
    public static let invalidFrame: UInt64 = ~0
}

/// One section of the core as its header declares it.
public struct CoreSection: Sendable, Equatable {
    public let name: String
    public let offset: UInt64
    public let size: UInt64
    public let entrySize: UInt64
    /// Whether all of `[offset, offset+size)` is inside the file.
    public let isComplete: Bool
}

/// `XEN_ELFNOTE_DUMPCORE_HEADER`.
public struct DumpcoreHeader: Sendable, Equatable {
    public let magic: UInt64
    public let vcpuCount: UInt64
    public let pageCount: UInt64
    public let pageSize: UInt64
    public var isHVM: Bool { magic == XenCoreLayout.magicHVM }
}

/// `XEN_ELFNOTE_DUMPCORE_XEN_VERSION`: which hypervisor wrote the core, and what it can run.
public struct XenVersionNote: Sendable, Equatable {
    public let major: UInt64
    public let minor: UInt64
    public let extra: String
    public let capabilities: String
    public let pageSize: UInt64
    public var versionString: String { "\(major).\(minor)\(extra)" }
}
