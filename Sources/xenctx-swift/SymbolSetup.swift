import Glibc
import ELFSymbols
import GuestKernel
import Symbols
import VCPUContext
import XenctxReport

/// The symbol files given, checked against the guest, and what the report needs of them.
extension XenctxCommand {
    /// `-m`/`-d` given as SYMBOL[+OFFSET]: looked up in the symbols decided for the guest.
    func resolveSymbolAddresses(_ options: inout ReportOptions) throws {
        func resolve(_ text: String?, _ flag: String) throws -> UInt64? {
            guard let text else { return nil }
            if let a = parseHexAddress(text) { return a }
            guard let (name, offset) = parseSymbolExpression(text) else { return nil }
            guard let symbols = options.symbols else {
                throw CommandFailure.failed("\(flag) \(TerminalSafe.escape(text)): there are no symbols to look it up in (this core holds no guest memory): give -s or an address")
            }
            guard let a = symbols.address(of: name) else {
                throw CommandFailure.failed("\(flag) \(TerminalSafe.escape(text)): no symbol \(TerminalSafe.escape(name)) in \(options.symbolFacts.isEmpty ? "the symbols" : "the symbols used") (kallsyms without data symbols, as on Debian's ARM kernels, names functions only: give -s System.map)")
            }
            return a &+ offset
        }
        if let a = try resolve(memory, "-m") { options.memoryAddress = a }
        if let a = try resolve(dumpAsStack, "-d") { options.dumpAsStack = a }
    }

    /// The symbol files the user gave, read (and checked for what they are) before the guest.
    struct SymbolFiles {
        var map: SystemMap?
        var elf: ELFFile?
        var identity: ELFIdentity?
    }

    func loadSymbolFiles() throws -> SymbolFiles {
        var files = SymbolFiles()
        if let symbolTable {
            do { files.map = try SystemMap.load(path: symbolTable) } catch { throw CommandFailure.from(error) }
        }
        if let vmlinux {
            do {
                let identity = try ELFIdentity(path: vmlinux)
                guard identity.isLinuxKernel else {
                    throw CommandFailure.failed("--vmlinux \(TerminalSafe.escape(vmlinux)): an ELF file for \(identity.machineName), but not a Linux kernel image (no Linux note, no __ksymtab): give the guest kernel's vmlinux, e.g. from Debian's linux-image-*-dbg")
                }
                files.identity = identity
                files.elf = try ELFFile(path: vmlinux)
            } catch {
                throw CommandFailure.from(error)
            }
        }
        return files
    }

    /// Symbols decided against the guest (a file checked, or the guest's kallsyms), the
    /// kernel's self-description found, and what the report needs of them.
    struct Prepared {
        var options: ReportOptions
        var kernel: GuestKernel?
        var warnings: [String]
        /// What the reader should know that is no failure (a vmlinux fetched by debuginfod).
        var notes: [String] = []
    }

    func prepare(guest: Guest, files: SymbolFiles, options base: ReportOptions) throws -> Prepared {
        var options = base
        let arch = guest.description.architecture
        if let identity = files.identity, let vmlinux {
            guard identity.machine == arch.descriptor.elfMachine else {
                throw CommandFailure.failed("--vmlinux \(TerminalSafe.escape(vmlinux)) is a kernel for \(identity.machineName), but the guest is \(arch.rawValue)")
            }
        }
        // Upstream's exact output (--unwind scan without -s) has no symbols: read nothing.
        let guestSymbols = unwind != "scan"
        var inputs = SymbolResolution.Inputs()
        inputs.map = files.map
        inputs.mapPath = symbolTable
        inputs.vmlinuxPath = vmlinux
        inputs.vmlinuxBuildID = files.identity?.buildID
        inputs.guestSymbols = guestSymbols
        inputs.offset = kaslr.flatMap { $0 == "auto" ? nil : parseHexAddress($0) }
        var warnings: [String] = []
        if inputs.map == nil, let elf = files.elf {
            do { inputs.map = try elf.symbolTable(); inputs.mapIsFromVmlinux = true } catch { throw CommandFailure.from(error) }
        }
        // The symbol file's vmcoreinfo_data (a System.map's or the vmlinux's) is tried before any search.
        let kernel = (guestSymbols || kernelViewsOnly || describe || files.map != nil || files.elf != nil) ? GuestKernel(guest: guest, vmcoreinfoPointer: inputs.map?.address(of: "vmcoreinfo_data")) : nil
        let resolution = SymbolResolution(guest: guest, kernel: kernel, inputs: inputs)
        warnings += resolution.warnings
        options.symbols = resolution.symbols
        options.kernelOffset = resolution.kernelOffset
        options.symbolFacts = resolution.symbolFacts
        options.absoluteSymbols = resolution.absoluteSymbols
        options.upstreamExact = !guestSymbols
        options.kernel = kernel
        if let elf = files.elf, resolution.vmlinuxFits {
            options.cfiUnwinder = elf
            if elf.hasDWARF { options.kernelTypes = VmlinuxTypes(elf: elf) }
            if elf.hasDWARF { options.sourceLocator = elf } else { warnings.append("\(TerminalSafe.escape(vmlinux ?? "")) has no DWARF: symbols only, no file:line") }
        }
        var notes: [String] = []
        if files.elf == nil, guestSymbols, let kernel {
            switch debuginfodVmlinux(guest: guest, kernel: kernel, symbols: options.symbols) {
            case .fetched(let elf, let path, let buildID)?:
                options.kernelTypes = VmlinuxTypes(elf: elf)
                options.sourceLocator = elf
                options.cfiUnwinder = elf
                notes.append("the guest kernel has no BTF: its types and source lines come from the vmlinux of build id \(buildID) that debuginfod gave (\(TerminalSafe.escape(path)))")
            case .failed(let why)?:
                warnings.append("the guest kernel has no BTF, and debuginfod gave no vmlinux for it: \(why)")
            case .skipped(let why)?:
                notes.append(why)
            case nil: break
            }
        }
        if let method = unwind, ["orc", "exidx"].contains(method), options.symbols == nil {
            throw CommandFailure.failed("--unwind \(method) finds the kernel's unwind tables through its symbols, and there are none: give -s or --vmlinux (\(kernel == nil ? "this core holds no guest memory" : "the guest's kallsyms could not be read"))")
        }
        return Prepared(options: options, kernel: kernel, warnings: warnings, notes: notes)
    }

    enum Fetched {
        case fetched(ELFFile, path: String, buildID: String)
        case failed(String)
        case skipped(String)
    }

    /// A guest kernel without BTF (Debian's armmp and 686) and no --vmlinux: its vmlinux by
    /// the build id VMCOREINFO gives, through debuginfod, as gdb and drgn fetch theirs. Nil
    /// when there is nothing to do: DEBUGINFOD_URLS unset, or the guest has BTF. What the
    /// server sends is checked as a given --vmlinux is (a Linux kernel of that build id).
    func debuginfodVmlinux(guest: Guest, kernel: GuestKernel, symbols: SystemMap?) -> Fetched? {
        guard Debuginfod.urls(getenv("DEBUGINFOD_URLS").map { String(cString: $0) }) != nil, let reader = KernelReader(guest: guest) else { return nil }
        let bounds = symbols?.addresses(of: BTF.boundSymbols) ?? [:]
        guard (try? BTF.locate(guest: guest, reader: reader, symbols: bounds)) == nil else { return nil }
        guard case .success(let located) = kernel.vmcoreinfo, let buildID = located.info.buildID else {
            return .failed("the guest's VMCOREINFO names no build id to ask for")
        }
        // A live run may hold the domain paused while it analyses: no download then.
        guard core != nil else {
            return .skipped("the guest kernel has no BTF; debuginfod is not asked in a live run, which may hold the domain paused: fetch its vmlinux first (debuginfod-find debuginfo \(buildID)) and give it as --vmlinux")
        }
        let path: String
        do { path = try Debuginfod.findDebuginfo(buildID: buildID, progress: isatty(2) == 1) } catch {
            return .failed("build id \(buildID): \(TerminalSafe.escape(error.description))")
        }
        do {
            let identity = try ELFIdentity(path: path)
            guard identity.isLinuxKernel, identity.machine == guest.description.architecture.descriptor.elfMachine else {
                return .failed("\(TerminalSafe.escape(path)) is not a Linux kernel for \(guest.description.architecture.rawValue)")
            }
            guard identity.buildID == buildID else {
                return .failed("\(TerminalSafe.escape(path)) has build id \(identity.buildID ?? "none"), not the guest's \(buildID)")
            }
            let elf = try ELFFile(path: path)
            guard elf.hasDWARF else { return .failed("\(TerminalSafe.escape(path)) has no DWARF") }
            return .fetched(elf, path: path, buildID: buildID)
        } catch {
            return .failed("\(error)")
        }
    }
}

/// Kernel types from the vmlinux's DWARF, for guests without BTF (Debian's armmp).
struct VmlinuxTypes: KernelTypes {
    let elf: ELFFile
    var source: String { "DWARF" }
    func size(of structName: String) -> Int? { elf.structSize(structName) }
    func offset(of path: String, in structName: String) -> Int? { elf.memberOffset(path, in: structName) }
    func arrayShape(of path: String, in structName: String) -> (count: Int, stride: Int)? { elf.arrayShape(path, in: structName) }
}
