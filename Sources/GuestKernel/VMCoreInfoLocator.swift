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
    struct Window: Equatable { let start: UInt64; let end: UInt64; let descending: Bool; let name: String }

    static func windows(guest: Guest) -> [Window] {
        let arch = guest.description.architecture
        switch arch {
        case .x86_64:
            // __START_KERNEL_map + KERNEL_IMAGE_SIZE (1 GiB): the image and its KASLR range.
            return [Window(start: 0xffff_ffff_8000_0000, end: 0xffff_ffff_c000_0000, descending: true, name: "the x86_64 kernel image map")]
        case .aarch64:
            // KIMAGE_VADDR = the end of the 128 MiB module area at the start of the kernel half.
            let vaBits = UInt64(min(max(guest.kernelVABits, 36), 48))
            let base = (~UInt64(0) << (vaBits - 1)) &+ (128 << 20)
            var result: [Window] = []
            // With KASLR the image is elsewhere in vmalloc space: follow a kernel PC there.
            for v in guest.vcpus where v.isOnline {
                if case .arm(let r) = v.registers, !r.isAArch32State, r.pc >> (vaBits - 1) == ~UInt64(0) >> (vaBits - 1),
                   r.pc < base || r.pc >= base + (256 << 20) {
                    let around = r.pc & ~UInt64((2 << 20) - 1)
                    result.append(Window(start: around &- (128 << 20), end: around &+ (128 << 20), descending: true, name: "around vcpu\(v.id)'s kernel PC"))
                    break
                }
            }
            result.append(Window(start: base, end: base + (256 << 20), descending: true, name: "the arm64 kernel image (KIMAGE_VADDR)"))
            return result
        case .arm32, .x86_32:
            // PAGE_OFFSET (3G/1G split, as Debian builds): the image is at the start of
            // lowmem, which is mapped throughout, so search upwards.
            return [Window(start: 0xc000_0000, end: 0xc000_0000 + (128 << 20), descending: false, name: "the start of lowmem (PAGE_OFFSET c0000000)")]
        }
    }

    static let prefix = Array("OSRELEASE=".utf8)
    /// At most this many pages are visited in all (512 MiB of mapped image window).
    static let maxPages = 1 << 17

    public static func locate(guest: Guest, reader: KernelReader) throws(KernelDataError) -> LocatedVMCoreInfo {
        let w = reader.wordSize
        let kernelHalf: UInt64 = w == 8 ? 0xffff_0000_0000_0000 : 0xc000_0000
        var checked = Set<UInt64>()
        var found: (UInt64, VMCoreInfo, String)? = nil
        var lastError: KernelDataError? = nil
        var pages = 0

        func tryText(at va: UInt64, how: String) -> Bool {
            guard let bytes = try? reader.cString(va, max: VMCoreInfo.maxBytes) else { return false }
            do {
                found = (va, try VMCoreInfo(text: bytes), how)
                return true
            } catch {
                lastError = error
                return false
            }
        }

        for window in windows(guest: guest) {
            reader.forEachMappedPage(from: window.start, to: window.end, descending: window.descending, maxPages: maxPages - pages) { va, page in
                pages += 1
                // A pointer to the page that holds the text (Linux >= 4.15).
                let count = 4096 / w
                var i = window.descending ? count - 1 : 0
                for _ in 0..<count {
                    let p = w == 8 ? page.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)
                                   : UInt64(page.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))
                    if p & 0xfff == 0, p >= kernelHalf, checked.count < 4096, checked.insert(p).inserted,
                       let target = try? reader.bytes(p, count: prefix.count, limit: prefix.count), target == prefix,
                       tryText(at: p, how: "through the pointer at \(hex(va + UInt64(i * w))) in \(window.name) (vmcoreinfo_data)") {
                        return false
                    }
                    i += window.descending ? -1 : 1
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

/// The first offset at or after `from` where `needle` occurs wholly inside `page`.
func find(_ needle: [UInt8], in page: UnsafeRawBufferPointer, from: Int) -> Int? {
    guard let base = page.baseAddress, !needle.isEmpty else { return nil }
    var i = from
    while i + needle.count <= page.count {
        guard let hit = memchr(base + i, Int32(needle[0]), page.count - needle.count + 1 - i) else { return nil }
        let offset = UnsafeRawPointer(hit) - base
        if memcmp(hit, needle, needle.count) == 0 { return offset }
        i = offset + 1
    }
    return nil
}
