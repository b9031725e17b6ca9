#if canImport(Glibc)
import Glibc
#endif
import VCPUContext

/// Finds VMCOREINFO in guest memory without knowing any symbol.
///
/// Since Linux 4.15 the text is in a page of its own (`vmcoreinfo_data`, allocated at
/// boot) and the kernel image holds a pointer to it in .bss; before that it was a static
/// array in the image itself. Either way the kernel image is the place to look, and the
/// image lies in a fixed window per architecture (the KASLR range on x86_64 and arm64).
/// The search visits the window's mapped pages only, from the end of the image (where
/// .bss is) on x86_64 and arm64, and checks each page-aligned kernel pointer for a page
/// that begins `OSRELEASE=`, and each page for the text itself. Its cost follows the size
/// of the kernel image, never the guest's RAM.
public struct LocatedVMCoreInfo: Sendable, Equatable {
    public let info: VMCoreInfo
    /// The virtual address of the text.
    public let address: UInt64
    /// How it was found, for `--describe`.
    public let how: String
    /// Pages of the kernel image window visited to find it.
    public let pagesScanned: Int
}

public enum VMCoreInfoLocator {
    /// The windows to search, in order, with the direction that reaches .bss first.
    typealias Window = KernelImageWindow

    static func windows(guest: Guest) -> [Window] { guest.description.architecture.descriptor.kernelImageWindows(guest: guest) }

    static let prefix = Array("OSRELEASE=".utf8)

    /// Where the kernel's linear map of RAM can be (vmcoreinfo_data is a page from it).
    static func directMap(guest: Guest) -> ClosedRange<UInt64> { guest.description.architecture.descriptor.directMap(guest: guest) }
    /// At most this many pages are visited in all (512 MiB of mapped image window).
    static let maxPages = 1 << 17

    public static func locate(guest: Guest, reader: KernelReader) throws(KernelDataError) -> LocatedVMCoreInfo {
        var unused: Result<KallsymsFinder.Found, KernelDataError>? = nil
        return try locate(guest: guest, reader: reader, kallsyms: &unused)
    }

    /// `kallsyms` receives the content search for kallsyms when it was run to start an
    /// upward search (found, or why not), so neither the next window nor a caller that needs
    /// kallsyms without VMCOREINFO repeats it: a failed search costs the most.
    ///
    /// `pointerHint` is where a symbol file puts `vmcoreinfo_data`: tried first, and only
    /// trusted if the text it leads to parses (a map of another build, or a KASLR-moved
    /// image, falls through to the search).
    public static func locate(guest: Guest, reader: KernelReader, kallsyms: inout Result<KallsymsFinder.Found, KernelDataError>?,
                              pointerHint: UInt64? = nil) throws(KernelDataError) -> LocatedVMCoreInfo {
        let w = reader.wordSize
        let direct = directMap(guest: guest)
        var checked = Set<UInt64>()
        var found: (UInt64, VMCoreInfo, String)? = nil
        var lastError: KernelDataError? = nil
        var pages = 0

        // The text a failed candidate read: an occurrence inside it starts a suffix of the
        // same lines, which fails too. Skipping those leaves at most one 64 KiB read per page
        // searched (memory filled with "OSRELEASE=A\n" made it 64 KiB per 12 bytes: 113 s).
        var failedText: Range<UInt64> = 0..<0
        func tryText(at va: UInt64, how: String) -> Bool {
            guard !failedText.contains(va) else { return false }
            guard let bytes = try? reader.cString(va, max: VMCoreInfo.maxBytes) else { return false }
            failedText = va..<(va &+ UInt64(bytes.count))
            do {
                found = (va, try VMCoreInfo(text: bytes), how)
                return true
            } catch {
                lastError = error
                return false
            }
        }

        /// A word that may be `vmcoreinfo_data`: a direct-map address whose page starts with the text.
        func tryPointer(_ p: UInt64, how: String) -> Bool {
            guard direct.contains(p), checked.count < 4096, checked.insert(p).inserted,
                  let target = try? reader.bytes(p, count: prefix.count, limit: prefix.count), target == prefix else { return false }
            return tryText(at: p, how: how)
        }

        if let hint = pointerHint, let p = try? reader.word(hint), p & 0xfff == 0,
           tryPointer(p, how: "through vmcoreinfo_data (\(hex(hint)), from the symbol file)") {
            return LocatedVMCoreInfo(info: found!.1, address: found!.0, how: found!.2, pagesScanned: 0)
        }
        for var window in windows(guest: guest) {
            // Upwards, .text comes first and holds many words that look like page pointers
            // (ARM instructions): start at the kallsyms tables in .rodata when they are found.
            if !window.descending, kallsyms == nil {
                kallsyms = Result { () throws(KernelDataError) in try KallsymsFinder.locate(guest: guest, reader: reader) }
            }
            if !window.descending, case .success(let found)? = kallsyms, (window.start..<window.end).contains(found.tables.tokenTable) {
                window = Window(start: found.tables.tokenTable & ~0xfff, end: window.end, descending: false,
                                name: window.name + " above the kallsyms tables")
                pages += found.pagesScanned
            }
            reader.forEachMappedPage(from: window.start, to: window.end, descending: window.descending, maxPages: maxPages - pages) { va, page in
                pages += 1
                // A pointer to the page that holds the text (Linux >= 4.15).
                var candidates = pageAlignedWords(page, width: w)
                if window.descending { candidates.reverse() }
                for i in candidates {
                    let p = w == 8 ? page.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)
                                   : UInt64(page.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))
                    if tryPointer(p, how: "through the pointer at \(hex(va + UInt64(i * w))) in \(window.name) (vmcoreinfo_data)") {
                        return false
                    }
                }
                // The text itself in the image (a static array before Linux 4.15), not the
                // format string "OSRELEASE=%s".
                var from = 0
                while let offset = find(prefix, in: page, from: from) {
                    let next = offset + prefix.count < 4096 ? page[offset + prefix.count] : 0
                    if next != UInt8(ascii: "%"), next >= 0x21, tryText(at: va + UInt64(offset), how: "as text in \(window.name)") { return false }
                    from = offset + 1
                }
                return true
            }
            if let found {
                return LocatedVMCoreInfo(info: found.1, address: found.0, how: found.2, pagesScanned: pages)
            }
        }
        if let lastError { throw lastError }
        let names = windows(guest: guest).map(\.name).joined(separator: ", ")
        throw KernelDataError("VMCOREINFO", "not found in \(names) (\(pages) mapped pages searched): the kernel may lack CONFIG_CRASH_CORE, or its image is not where this architecture puts it")
    }
}

/// Indices of the non-zero, page-aligned words of a page (candidate page pointers).
/// Eight bytes at a time: .bss is mostly zeros, and most other words are not aligned.
func pageAlignedWords(_ page: UnsafeRawBufferPointer, width: Int) -> [Int] {
    var out: [Int] = []
    var o = 0
    while o + 8 <= page.count {
        let v = page.loadUnaligned(fromByteOffset: o, as: UInt64.self)
        if v != 0 {
            if width == 8 {
                if v & 0xfff == 0 { out.append(o / 8) }
            } else {
                if v & 0xfff == 0 && v & 0xffff_ffff != 0 { out.append(o / 4) }
                if (v >> 32) & 0xfff == 0 && v >> 32 != 0 { out.append(o / 4 + 1) }
            }
        }
        o += 8
    }
    return out
}

/// The first offset at or after `from` where `needle` occurs wholly inside `page`.
func find(_ needle: [UInt8], in page: UnsafeRawBufferPointer, from: Int) -> Int? {
    guard let base = page.baseAddress, !needle.isEmpty else { return nil }
    var i = from
    while i + needle.count <= page.count {
        guard let hit = memchr(base + i, Int32(needle[0]), page.count - needle.count + 1 - i) else { return nil }
        let offset = UnsafeRawPointer(hit) - base
        // Check the second byte inline: the first alone matches often in code.
        if needle.count < 2 || page[offset + 1] == needle[1], memcmp(hit, needle, needle.count) == 0 { return offset }
        i = offset + 1
    }
    return nil
}

extension KernelReader {
    /// The first result `match` gives on the kernel image's mapped pages, searched upwards
    /// window by window (.text first, then .rodata, .data and .bss), visiting at most
    /// `VMCoreInfoLocator.maxPages` pages in all; with the window's name and the pages visited.
    /// With `from`, what lies below it is skipped (what is sought is known to be above it);
    /// with `to`, what lies at or above it (what is sought is known to end below it).
    func firstInKernelImage<T>(guest: Guest, from: UInt64? = nil, to: UInt64? = nil, _ match: (_ va: UInt64, _ page: UnsafeRawBufferPointer) -> T?) -> (found: (T, window: String)?, pages: Int) {
        var pages = 0
        for window in VMCoreInfoLocator.windows(guest: guest) {
            let start = max(window.start, (from ?? 0) & ~0xfff)
            let end = min(window.end, to ?? window.end)
            guard start < end else { continue }
            var result: T? = nil
            forEachMappedPage(from: start, to: end, descending: false, maxPages: VMCoreInfoLocator.maxPages - pages) { va, page in
                pages += 1
                result = match(va, page)
                return result == nil
            }
            if let result { return ((result, window.name), pages) }
        }
        return (nil, pages)
    }
}
