import VCPUContext

/// `struct module` as the task and trace views read it, from the kernel's types.
public struct ModuleLayout: Sendable, Equatable {
    public let list: Int, name: Int, nameLength: Int
    /// The core text and data (`core_layout.base/size/text_size` before 6.4, `mem[MOD_TEXT]` after).
    public let base: Int, size: Int, textSize: Int?
    /// 6.4+: `mem[]`'s element count and size. The module's size is the sum of every
    /// element's, as /proc/modules adds them (init memory's are 0 once it is freed).
    public let memory: (count: Int, stride: Int)?
    /// `module.kallsyms` → `struct mod_kallsyms` {symtab, num_symtab, strtab}.
    public let kallsyms: Int?, symtab: Int?, numSymtab: Int?, strtab: Int?
    /// x86_64 ORC of the module (`arch.orc_unwind_ip`, `arch.orc_unwind`, `arch.num_orcs`).
    public let orc: (ip: Int, entries: Int, count: Int)?
    /// Its init text while it loads (`init_layout` before 6.4, `mem[MOD_INIT_TEXT]` after):
    /// a module still in its init runs there, until the kernel frees it.
    public let initText: (base: Int, size: Int, textSize: Int?)?

    public static func == (a: ModuleLayout, b: ModuleLayout) -> Bool { a.list == b.list && a.name == b.name && a.base == b.base && a.memory?.count == b.memory?.count }

    public init(types: some KernelTypes) throws(KernelDataError) {
        func at(_ path: String, _ s: String = "module") -> Int? { types.offset(of: path, in: s) }
        guard let list = at("list"), let name = at("name") else { throw KernelDataError(types.source, "struct module lacks list or name") }
        (self.list, self.name) = (list, name)
        nameLength = 56 // MODULE_NAME_LEN on 64-bit (64 - sizeof(unsigned long)); names are bounded by it
        if let b = at("core_layout.base"), let s = at("core_layout.size") {
            (base, size, textSize) = (b, s, at("core_layout.text_size"))
            memory = nil
        } else if let b = at("mem.base"), let s = at("mem.size") {
            (base, size, textSize) = (b, s, nil)   // mem[MOD_TEXT] is element 0
            memory = types.arrayShape(of: "mem", in: "module").flatMap { $0.count <= 16 && $0.stride >= 8 ? $0 : nil }
        } else {
            throw KernelDataError(types.source, "struct module has neither core_layout nor mem")
        }
        if let b = at("init_layout.base"), let s = at("init_layout.size") {
            initText = (b, s, at("init_layout.text_size"))
        } else if let m = memory, m.count > 4 {
            initText = (base + 4 * m.stride, size + 4 * m.stride, nil)    // MOD_INIT_TEXT is element 4
        } else {
            initText = nil
        }
        kallsyms = at("kallsyms")
        symtab = at("symtab", "mod_kallsyms"); numSymtab = at("num_symtab", "mod_kallsyms"); strtab = at("strtab", "mod_kallsyms")
        if let ip = at("arch.orc_unwind_ip"), let entries = at("arch.orc_unwind"), let count = at("arch.num_orcs") {
            orc = (ip, entries, count)
        } else {
            orc = nil
        }
    }
}

/// A loaded module: where its core lies, its function symbols (from its own symbol
/// table in guest memory, `mod->kallsyms`) and its ORC tables.
public struct KernelModule: Sendable, Equatable {
    public let address: UInt64
    public let name: String
    public let base: UInt64, size: UInt64
    /// [base, base + text size): where its functions are.
    public let text: Range<UInt64>
    /// Its init text, while it has one (a module still in its init function).
    public var initText: Range<UInt64>? = nil
    /// Every range of its code.
    public var code: [Range<UInt64>] { [text] + (initText.map { [$0] } ?? []) }
    public let symbols: [(address: UInt64, name: String)]
    /// ORC: (ip table, entries, count).
    public let orc: (ip: UInt64, entries: UInt64, count: Int)?
    public let problems: [String]

    public static func == (a: KernelModule, b: KernelModule) -> Bool { a.address == b.address && a.name == b.name }

    static let maxSymbols = 1 << 18
    static let maxSize: UInt64 = 1 << 30
}

/// The guest's loaded modules, walked from the `modules` list head (bounded, cycle-checked).
public struct ModuleList: Sendable {
    public let modules: [KernelModule]
    public let problems: [String]
    public static let maxModules = 4096

    public static func walk(reader: KernelReader, layout: ModuleLayout, head: UInt64) -> ModuleList {
        var modules: [KernelModule] = []
        var problems: [String] = []
        var seen: Set<UInt64> = [head]
        var node = head
        while modules.count < maxModules {
            guard let next = try? reader.word(node), next != 0 else {
                problems.append("the module list is broken at \(hex(node))")
                break
            }
            if next == head { break }
            guard seen.insert(next).inserted else {
                problems.append("the module list loops at \(hex(next))")
                break
            }
            node = next
            switch read(at: next &- UInt64(layout.list), reader: reader, layout: layout) {
            case .success(let m): modules.append(m); problems += m.problems.map { "module \(m.name): \($0)" }
            case .failure(let e): problems.append(e.description); return ModuleList(modules: modules, problems: problems)
            }
        }
        if modules.count >= maxModules { problems.append("stopped after \(maxModules) modules") }
        return ModuleList(modules: modules, problems: problems)
    }

    static func read(at address: UInt64, reader: KernelReader, layout: ModuleLayout) -> Result<KernelModule, KernelDataError> {
        Result { () throws(KernelDataError) in
            func fail(_ why: String) -> KernelDataError { KernelDataError("module at \(hex(address))", why) }
            let w = UInt64(reader.wordSize)
            guard let nameBytes = try? reader.bytes(address &+ UInt64(layout.name), count: layout.nameLength, limit: layout.nameLength),
                  let end = nameBytes.firstIndex(of: 0), end > 0, nameBytes[..<end].allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
                throw fail("no module name there")
            }
            let name = String(decoding: nameBytes[..<end], as: UTF8.self)
            guard let base = try? reader.word(address &+ UInt64(layout.base)),
                  let size = try? reader.u32(address &+ UInt64(layout.size)), size > 0, UInt64(size) <= KernelModule.maxSize,
                  // Guest data: a base whose module would run past the top of the address space.
                  base <= UInt64.max - UInt64(size) else {
                throw fail("module \(name) has no readable or plausible base and size")
            }
            let textSize = layout.textSize.flatMap { try? reader.u32(address &+ UInt64($0)) }.map { UInt64($0) } ?? UInt64(size)
            let text = base..<(base &+ min(textSize, UInt64(size)))
            // 6.4+: size was mem[MOD_TEXT]'s; the module's is every element's together.
            var total = UInt64(size)
            if let m = layout.memory {
                total = 0
                for i in 0..<m.count {
                    guard let s = try? reader.u32(address &+ UInt64(layout.size + i * m.stride)) else { throw fail("module \(name): mem[\(i)].size unreadable") }
                    total += UInt64(s)
                }
                guard total <= KernelModule.maxSize else { throw fail("module \(name): its memory adds up to \(total) bytes") }
            }
            var problems: [String] = []
            var initText: Range<UInt64>? = nil
            if let i = layout.initText, let b = try? reader.word(address &+ UInt64(i.base)), b != 0,
               let s = try? reader.u32(address &+ UInt64(i.size)), s > 0, UInt64(s) <= KernelModule.maxSize, b <= UInt64.max - UInt64(s) {
                let t = i.textSize.flatMap { try? reader.u32(address &+ UInt64($0)) }.map { min(UInt64($0), UInt64(s)) } ?? UInt64(s)
                if t > 0 { initText = b..<(b &+ t) }
            }
            // Its function symbols (STT_FUNC) inside its text, from its Elf_Sym table.
            var symbols: [(address: UInt64, name: String)] = []
            if let ks = layout.kallsyms, let symtabOff = layout.symtab, let numOff = layout.numSymtab, let strOff = layout.strtab,
               let kallsyms = try? reader.word(address &+ UInt64(ks)), kallsyms != 0 {
                let symtab = (try? reader.word(kallsyms &+ UInt64(symtabOff))) ?? 0
                let count = Int((try? reader.u32(kallsyms &+ UInt64(numOff))) ?? 0)
                let strtab = (try? reader.word(kallsyms &+ UInt64(strOff))) ?? 0
                let entrySize = w == 8 ? 24 : 16
                if count > KernelModule.maxSymbols || symtab == 0 || strtab == 0 {
                    problems.append("symbol table of \(count) entries at \(hex(symtab)) is not plausible")
                } else if let table = try? reader.bytes(symtab, count: count * entrySize, limit: KernelModule.maxSymbols * 24) {
                    func u32(_ o: Int) -> UInt64 { UInt64(table[o]) | UInt64(table[o + 1]) << 8 | UInt64(table[o + 2]) << 16 | UInt64(table[o + 3]) << 24 }
                    for i in 0..<count {
                        let e = i * entrySize
                        let nameOffset = u32(e)
                        let info = w == 8 ? table[e + 4] : table[e + 12]
                        let value = w == 8 ? u32(e + 8) | u32(e + 12) << 32 : u32(e + 4)
                        guard info & 0xf == 2, text.contains(value) || initText?.contains(value) == true, nameOffset < 1 << 24,
                              let n = try? reader.cString(strtab &+ nameOffset, max: 256), !n.isEmpty else { continue }
                        symbols.append((value, String(decoding: n, as: UTF8.self)))
                    }
                } else {
                    problems.append("symbol table at \(hex(symtab)) unreadable")
                }
            }
            var orc: (UInt64, UInt64, Int)? = nil
            if let o = layout.orc, let ip = try? reader.word(address &+ UInt64(o.ip)), let entries = try? reader.word(address &+ UInt64(o.entries)),
               let count = try? reader.u32(address &+ UInt64(o.count)), count > 0, count < 1 << 20 {
                orc = (ip, entries, Int(count))
            }
            var module = KernelModule(address: address, name: name, base: base, size: total, text: text, symbols: symbols, orc: orc, problems: problems)
            module.initText = initText
            return module
        }
    }
}
