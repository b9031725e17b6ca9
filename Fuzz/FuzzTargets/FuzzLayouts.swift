import GuestKernel
import Symbols
import VCPUContext

extension FuzzTargets {
    static let architectures: [GuestArchitecture] = [.x86_64, .x86_32, .aarch64, .arm32]

    /// A guest of each architecture as a core describes it (no memory of its own here).
    static func description(_ a: GuestArchitecture) -> GuestDescription {
        switch a {
        case .x86_64: GuestDescription(architecture: .x86_64, isPV: true, layout: .x86_64, protectedMode: true, wordSize: 8, evidence: [])
        case .x86_32: GuestDescription(architecture: .x86_32, isPV: true, layout: .x86_32, protectedMode: true, wordSize: 4, evidence: [])
        case .aarch64: GuestDescription(architecture: .aarch64, isPV: false, layout: .arm(entrySize: 352), protectedMode: true, wordSize: 8, evidence: [])
        case .arm32: GuestDescription(architecture: .arm32, isPV: false, layout: .arm(entrySize: 352), protectedMode: true, wordSize: 4, evidence: [])
        }
    }

    static let zeroX86_64 = X86_64Registers(LittleEndianBytes([UInt8](repeating: 0, count: 5168)))
    static let zeroX86_32 = X86_32Registers(LittleEndianBytes([UInt8](repeating: 0, count: 2800)))
    static let zeroArm = ArmRegisters(LittleEndianBytes([UInt8](repeating: 0, count: 352)), entrySize: 352)!

    /// An online vCPU of `a` whose SP_EL0 (arm64) and SP_svc (ARM32) are `sp`, CPSR `cpsr`.
    static func vcpu(_ id: Int, _ a: GuestArchitecture, sp: UInt64, cpsr: UInt32) -> VCPU {
        let registers: RegisterFile
        switch a {
        case .x86_64: registers = .x86_64(zeroX86_64)
        case .x86_32: registers = .x86_32(zeroX86_32)
        case .aarch64, .arm32:
            var r = zeroArm
            r.flags = 1
            r.cpsr = UInt64(cpsr)
            r.spEL0 = sp
            r.x[19] = sp & 0xffff_ffff      // SP_svc
            r.x[13] = sp & 0xffff_ffff
            registers = .arm(r)
        }
        return VCPU(id: id, idIsCertain: true, registers: registers, online: true)
    }

    /// task_struct's and struct module's layouts from a BTF in the input, for every guest
    /// architecture (each takes its own switch frame and entry registers from the types);
    /// then, with the chosen architecture's layout over sparse memory: one task read with its
    /// saved context (x86 inactive_task_frame, arm64 cpu_context, ARM32 cpu_context_save in
    /// the task or at its stack's base) and user entry registers, a bounded task-list walk,
    /// each vCPU's current task as the report finds it (x86's per-CPU current_task or
    /// pcpu_hot.current_task, arm64's SP_EL0, ARM32's task whose stack holds SP_svc or the
    /// runqueue's curr), the module list, and the timekeeper (`tk_core`) at the task's address.
    ///   [arch][flags][u16 length][BTF][u64 task, init_task, modules, __per_cpu_offset,
    ///    current_task or pcpu_hot, runqueues, __per_cpu_start][u64 SP of vCPUs 0–3][u32 CPSR][memory]
    /// flags: 1 pcpu_hot (not current_task), 2 per-CPU variable absolute (x86_64 kallsyms),
    /// 4·(vCPUs - 1) (two bits), 16/32/64 the symbols name __per_cpu_start/init_task/runqueues.
    static func layouts(_ data: UnsafeRawBufferPointer) { LayoutsCase(data)?.run() }
}

/// The layouts target's input, decoded (the tests check the seeds through it).
struct LayoutsCase {
    let architecture: GuestArchitecture
    let btf: BTF
    /// The chosen architecture's task layout, when the types give one.
    let layout: TaskLayout?
    let moduleLayout: ModuleLayout?
    let task: UInt64, initTask: UInt64, modules: UInt64
    let memory: FuzzRegions
    let reader: KernelReader
    let guest: Guest
    let symbols: SystemMap?
    let absolute: [String: UInt64]

    init?(_ data: UnsafeRawBufferPointer) {
        var h = FuzzHeader(data)
        let architecture = FuzzTargets.architectures[Int(h.u8() % 4)]
        self.architecture = architecture
        let flags = h.u8()
        guard let btf = try? BTF(bytes: Array(h.take(Int(h.u16())))) else { return nil }
        self.btf = btf
        // Every architecture's layout from these types (each reads its own switch frame and
        // entry registers); the chosen one's reads memory.
        var layout: TaskLayout? = nil
        for a in FuzzTargets.architectures {
            let l = try? TaskLayout(types: btf, architecture: a, how: "fuzz")
            if a == architecture { layout = l }
        }
        self.layout = layout
        moduleLayout = try? ModuleLayout(types: btf)
        (task, initTask, modules) = (h.u64(), h.u64(), h.u64())
        let perCPUOffset = h.u64(), current = h.u64(), runqueues = h.u64(), perCPUStart = h.u64()
        let sp = (0..<4).map { _ in h.u64() }
        let cpsr = h.u32()
        memory = FuzzRegions(&h)
        reader = KernelReader(memory: GuestMemory(frames: memory, translation: .identity), wordSize: architecture.wordSize)
        let vcpus = (0..<(1 + Int(flags >> 2 & 3))).map { FuzzTargets.vcpu($0, architecture, sp: sp[$0], cpsr: cpsr) }
        guest = Guest(description: FuzzTargets.description(architecture), vcpus: vcpus, frames: memory, warnings: [], facts: [])
        let variable = flags & 1 == 0 ? "current_task" : "pcpu_hot"
        var names: [(String, UInt64)] = [("__per_cpu_offset", perCPUOffset)]
        var absolute: [String: UInt64] = [:]
        if flags & 2 != 0 { absolute[variable] = current } else { names.append((variable, current)) }
        if flags & 16 != 0 { names.append(("__per_cpu_start", perCPUStart)) }
        if flags & 32 != 0 { names.append(("init_task", initTask)) }
        if flags & 64 != 0 { names.append(("runqueues", runqueues)) }
        self.absolute = absolute
        symbols = try? SystemMap(bytes: Array(names.map { "\(hex($0.1)) D \($0.0)\n" }.joined().utf8), path: "fuzz")
    }

    func run() {
        // The timekeeper read as the verdict reads it, at the task's address (any address will do).
        _ = GuestClock.read(reader: reader, types: btf) { $0 == "tk_core" ? task : symbols?.address(of: $0) }
        if let moduleLayout { _ = ModuleList.walk(reader: reader, layout: moduleLayout, head: modules) }
        guard let layout else { return }
        if let t = try? KernelTask.read(at: task, reader: reader, layout: layout) {
            _ = try? t.savedContext(reader: reader, layout: layout)
            _ = t.userEntry(reader: reader, layout: layout, architecture: architecture)
        }
        if case .success(let list) = TaskList.walk(reader: reader, layout: layout, initTask: initTask, idleTasks: [task], maxTasks: 64) {
            for t in list.tasks.prefix(8) {
                _ = try? t.savedContext(reader: reader, layout: layout)
                _ = t.userEntry(reader: reader, layout: layout, architecture: architecture)
            }
        }
        for (_, found) in CurrentTask.all(guest: guest, reader: reader, layout: layout, symbols: symbols, absolute: absolute) {
            if case .success(let t) = found { _ = t.how }
        }
    }
}

/// BTF written for seeds: records appended raw or built, names interned.
struct BTFWriter {
    var types: [UInt8] = []
    var strings: [UInt8] = [0]
    var names: [String: UInt32] = ["": 0]
    var count = 0

    mutating func name(_ s: String) -> UInt32 {
        if let o = names[s] { return o }
        let o = UInt32(strings.count)
        strings += Array(s.utf8) + [0]
        names[s] = o
        return o
    }

    /// A record's 12-byte head; returns its type id.
    mutating func head(_ name: String, kind: Int, vlen: Int, kindFlag: Bool = false, sizeOrType: Int) -> Int {
        types.le(UInt64(self.name(name)), 4)
        types.le(UInt64(vlen) | UInt64(kind) << 24 | (kindFlag ? 1 << 31 : 0), 4)
        types.le(UInt64(sizeOrType), 4)
        count += 1
        return count
    }

    mutating func int(_ name: String, size: Int) -> Int {
        let id = head(name, kind: 1, vlen: 0, sizeOrType: size)
        types.le(UInt64(size * 8), 4)
        return id
    }

    /// A struct whose members are (name, type id, byte offset).
    mutating func structure(_ name: String, size: Int, _ members: [(String, Int, Int)]) -> Int {
        let id = head(name, kind: 4, vlen: members.count, sizeOrType: size)
        for (n, t, o) in members { types.le(UInt64(self.name(n)), 4); types.le(UInt64(t), 4); types.le(UInt64(o * 8), 4) }
        return id
    }

    var bytes: [UInt8] {
        var out: [UInt8] = [0x9f, 0xeb, 1, 0]
        out.le(24, 4); out.le(0, 4); out.le(UInt64(types.count), 4); out.le(UInt64(types.count), 4); out.le(UInt64(strings.count), 4)
        return out + types + strings
    }
}

extension Seeds {
    /// The structs the task and module layouts ask BTF about.
    static let layoutStructs = ["task_struct", "signal_struct", "rq", "pcpu_hot", "inactive_task_frame", "cpu_context", "thread_info",
                                "cpu_context_save", "pt_regs", "module", "mod_kallsyms", "timekeeper", "tk_data", "seqcount_raw_spinlock"]
    /// A real kernel's BTF cut to `layoutStructs`: each with every member, the structs and
    /// unions its members embed (through typedefs, qualifiers and arrays) with theirs, and
    /// anonymous members at any depth, so every member path of two names reads as in the
    /// whole BTF; the other types members name are left out (type 0). Type ids are
    /// renumbered, offsets kept.
    static func btfSubset(_ b: [UInt8]) -> [UInt8]? {
        func u32(_ o: Int) -> Int { o + 4 <= b.count ? Int(b[o]) | Int(b[o + 1]) << 8 | Int(b[o + 2]) << 16 | Int(b[o + 3]) << 24 : 0 }
        guard b.count >= 24, b[0] == 0x9f, b[1] == 0xeb else { return nil }
        let hdr = u32(4), typesStart = hdr + u32(8), typesEnd = typesStart + u32(12), stringsStart = hdr + u32(16), stringsEnd = stringsStart + u32(20)
        guard typesEnd <= b.count, stringsEnd <= b.count else { return nil }
        func string(_ o: Int) -> String {
            var e = stringsStart + o
            while e < stringsEnd && b[e] != 0 { e += 1 }
            return String(decoding: b[min(stringsStart + o, e)..<e], as: UTF8.self)
        }
        var at: [Int] = [0]                                   // record offset by type id
        var p = typesStart
        while p + 12 <= typesEnd {
            at.append(p)
            let info = u32(p + 4), vlen = info & 0xffff, kind = (info >> 24) & 0x1f
            switch kind {
            case 1, 14, 17: p += 16
            case 3: p += 24
            case 4, 5, 15, 19: p += 12 + 12 * vlen
            case 6, 13: p += 12 + 8 * vlen
            default: p += 12
            }
        }
        func kind(_ id: Int) -> Int { (u32(at[id] + 4) >> 24) & 0x1f }
        func vlen(_ id: Int) -> Int { u32(at[id] + 4) & 0xffff }
        let refersInHead: Set<Int> = [2, 8, 9, 10, 11, 12, 13, 14, 17, 18]
        var keep: [Int] = []
        var kept: Set<Int> = []
        /// The struct or union a member's type names, through typedefs, qualifiers and
        /// arrays (as member paths go through them), with the records on the way.
        func chain(_ id: Int) -> [Int]? {
            var ids: [Int] = [], t = id
            for _ in 0..<16 {
                guard t > 0, t < at.count else { return nil }
                ids.append(t)
                switch kind(t) {
                case 4, 5: return ids
                case 3: t = u32(at[t] + 12)
                case 8, 9, 10, 11, 18: t = u32(at[t] + 8)
                default: return nil
                }
            }
            return nil
        }
        // Each named struct (depth 0), the structs its members embed (depth 1: `thread.sp`
        // is a member of a member), and anonymous members at any depth (C looks through them).
        var work: [(id: Int, depth: Int)] = []
        for name in layoutStructs {
            if let id = (1..<at.count).first(where: { kind($0) == 4 && string(u32(at[$0])) == name }) { work.append((id, 0)) }
        }
        while let (id, depth) = work.popLast() {
            guard kept.insert(id).inserted else { continue }
            keep.append(id)
            guard kind(id) == 4 || kind(id) == 5 else { continue }
            for i in 0..<vlen(id) {
                let m = at[id] + 12 + 12 * i
                let anonymous = u32(m) == 0
                guard anonymous || depth == 0, let ids = chain(u32(m + 4)) else { continue }
                for (k, t) in ids.enumerated() { work.append((t, k == ids.count - 1 ? (anonymous ? depth : depth + 1) : 2)) }
            }
        }
        keep.sort()
        var newID: [Int: Int] = [:]
        for (i, id) in keep.enumerated() { newID[id] = i + 1 }
        func remap(_ t: Int) -> Int { newID[t] ?? 0 }
        var w = BTFWriter()
        for id in keep {
            let r = at[id], k = kind(id), n = vlen(id), info = u32(r + 4)
            _ = w.head(string(u32(r)), kind: k, vlen: n, kindFlag: info >> 31 != 0, sizeOrType: refersInHead.contains(k) ? remap(u32(r + 8)) : u32(r + 8))
            switch k {
            case 1, 14, 17: w.types.le(UInt64(u32(r + 12)), 4)
            case 3: w.types.le(UInt64(remap(u32(r + 12))), 4); w.types.le(UInt64(remap(u32(r + 16))), 4); w.types.le(UInt64(u32(r + 20)), 4)
            case 4, 5:
                for i in 0..<n {
                    let m = r + 12 + 12 * i
                    w.types.le(UInt64(w.name(string(u32(m)))), 4); w.types.le(UInt64(remap(u32(m + 4))), 4); w.types.le(UInt64(u32(m + 8)), 4)
                }
            case 6:
                for i in 0..<n { let m = r + 12 + 8 * i; w.types.le(UInt64(w.name(string(u32(m)))), 4); w.types.le(UInt64(u32(m + 4)), 4) }
            case 19:
                for i in 0..<n { let m = r + 12 + 12 * i; w.types.le(UInt64(w.name(string(u32(m)))), 4); w.types.le(UInt64(u32(m + 4)), 4); w.types.le(UInt64(u32(m + 8)), 4) }
            case 13:
                for i in 0..<n { let m = r + 12 + 8 * i; w.types.le(UInt64(w.name(string(u32(m)))), 4); w.types.le(UInt64(remap(u32(m + 4))), 4) }
            case 15:
                for i in 0..<n { let m = r + 12 + 12 * i; w.types.le(UInt64(remap(u32(m))), 4); w.types.le(UInt64(u32(m + 4)), 4); w.types.le(UInt64(u32(m + 8)), 4) }
            default: break
            }
        }
        return w.bytes
    }

    /// A layouts input: header, BTF, addresses, then memory.
    static func layoutsSeed(architecture: GuestArchitecture, flags: UInt8, btf: [UInt8], task: UInt64, initTask: UInt64, modules: UInt64,
                             perCPUOffset: UInt64, current: UInt64, runqueues: UInt64, perCPUStart: UInt64, sp: [UInt64], cpsr: UInt32,
                             memory: FuzzRegions.Builder) -> [UInt8] {
        var out: [UInt8] = [UInt8(FuzzTargets.architectures.firstIndex(of: architecture)!), flags]
        out.le(UInt64(btf.count), 2)
        out += btf
        for v in [task, initTask, modules, perCPUOffset, current, runqueues, perCPUStart] + (0..<4).map({ $0 < sp.count ? sp[$0] : 0 }) { out.le(v, 8) }
        out.le(UInt64(cpsr), 4)
        return out + memory.encoded
    }

    /// layouts seeds from a guest whose kernel has BTF (x86_64, arm64): its BTF cut to the
    /// layouts' structs, and the bytes the reads take from its memory (the current task of
    /// vCPU 0, init_task and the next tasks, their switch frames and entry registers, the
    /// per-CPU pointers, the first module and its first symbols), with the task ring and
    /// module list closed after the few kept.
    static func layoutsSeeds(guest: Guest, kernel: GuestKernel, reader: KernelReader) -> [UInt8]? {
        guard case .success(let own) = kernel.symbols() else { return nil }
        let a = guest.description.architecture
        guard let found = try? BTF.locate(guest: guest, reader: reader, symbols: own.map.addresses(of: ["__start_BTF", "__stop_BTF", "_etext"])),
              let head = try? reader.bytes(found.address, count: 24, limit: 24) else { return nil }
        let size = 24 + (Int(head[12]) | Int(head[13]) << 8 | Int(head[14]) << 16 | Int(head[15]) << 24)
            + (Int(head[20]) | Int(head[21]) << 8 | Int(head[22]) << 16 | Int(head[23]) << 24)
        guard let whole = try? reader.bytes(found.address, count: size, limit: BTF.maxBytes), let btf = btfSubset(whole),
              let layout = try? TaskLayout(types: found.btf, architecture: a, how: "seed") else { return nil }
        let w = reader.wordSize
        var m = FuzzRegions.Builder()
        func grab(_ va: UInt64, _ n: Int) { if let b = try? reader.bytes(va, count: n, limit: 1 << 16) { m.put(va, b) } }
        func word(_ va: UInt64) -> UInt64? { try? reader.word(va) }
        func grabTask(_ t: UInt64) {
            for (o, n) in [(layout.pid, 4), (layout.tgid, 4), (layout.comm, 16)] { grab(t &+ UInt64(o), n) }
            for (o, n) in [(layout.tasks, 2 * w), (layout.threadGroup, 2 * w), (layout.state, 4), (layout.exitState, 4), (layout.realParent, w),
                           (layout.cpu, 4), (layout.onCPU, 4), (layout.flags, 4), (layout.stack, w)] {
                if let o { grab(t &+ UInt64(o), n) }
            }
            // Alone in its thread group (the other threads are not kept): thread_group, or
            // (6.7+) thread_node in its signal_struct's thread_head.
            if let g = layout.threadGroup { m.put(t &+ UInt64(g), word: t &+ UInt64(g), w); m.put(t &+ UInt64(g + w), word: t &+ UInt64(g), w) }
            if let n = layout.threadNode, let signal = word(t &+ UInt64(n.signal)) {
                let head = signal &+ UInt64(n.head), node = t &+ UInt64(n.node)
                grab(t &+ UInt64(n.signal), w)
                m.put(head, word: node, w); m.put(head &+ UInt64(w), word: node, w)
                m.put(node, word: head, w); m.put(node &+ UInt64(w), word: head, w)
            }
            if let p = layout.realParent, let parent = word(t &+ UInt64(p)) { grab(parent &+ UInt64(layout.pid), 4) }
            switch layout.switchFrame {
            case .x86(let threadSP, _, let bp, let ret)?:
                grab(t &+ UInt64(threadSP), w)
                if let frame = word(t &+ UInt64(threadSP)) { grab(frame &+ UInt64(bp), w); grab(frame &+ UInt64(ret), w) }
            case .aarch64(let fp, let sp, let pc)?:
                for o in [fp, sp, pc] { grab(t &+ UInt64(o), w) }
            default: break
            }
            if let s = layout.stack, let base = word(t &+ UInt64(s)), let regs = layout.entryRegisters {
                let d = a.descriptor
                let at = base &+ d.kernelStackSize &- UInt64(regs.size) &- d.stackTopPadding
                for o in [regs.ip, regs.sp, regs.flags, regs.cs, regs.ss].compactMap({ $0 }) { grab(at &+ UInt64(o), w) }
            }
        }
        // vCPU 0's current task, as the report finds it.
        let symbols = own.map.addresses(of: ["init_task", "modules", "__per_cpu_offset", "__per_cpu_start", "runqueues", "current_task", "pcpu_hot"])
        let known = PerCPU.variables(["current_task", "pcpu_hot", "runqueues"], symbols: own.map, absolute: own.absolute, architecture: a)
        let currents = CurrentTask.all(guest: guest, reader: reader, layout: layout, symbols: own.map, absolute: own.absolute)
        var task: UInt64 = 0, idle0: UInt64? = nil
        let vcpus = min(guest.vcpus.count, 4)
        for id in (0..<vcpus).reversed() {
            guard case .success(let t)? = currents[id] else { continue }
            task = t.address
            grabTask(t.address)
            if id == 0 && t.pid == 0 { idle0 = t.address }
        }
        if let offsets = known["__per_cpu_offset"] {
            for id in 0..<vcpus {
                grab(offsets &+ UInt64(id * w), w)
                if let base = word(offsets &+ UInt64(id * w)) {
                    if let c = known["current_task"] ?? known["pcpu_hot"].flatMap({ h in layout.pcpuHotCurrentTask.map { h &+ UInt64($0) } }) { grab(base &+ c, w) }
                    if let rq = known["runqueues"] { for o in [layout.runqueueIdle, layout.runqueueCurrent].compactMap({ $0 }) { grab(base &+ rq &+ UInt64(o), w) } }
                }
            }
        }
        // init_task and the next three tasks, the ring closed after them.
        // (CPU 0's idle task is init_task, when the symbols do not name it.)
        var initTask: UInt64 = 0
        if let i = symbols["init_task"] ?? idle0, let tasks = layout.tasks {
            initTask = i
            var t = i
            for k in 0..<4 {
                grabTask(t)
                guard let next = word(t &+ UInt64(tasks)) else { break }
                if k == 3 || next &- UInt64(tasks) == i { m.put(t &+ UInt64(tasks), word: i &+ UInt64(tasks), w); break }
                t = next &- UInt64(tasks)
            }
        }
        // The first module, its symbol table cut to eight entries, the list closed after it.
        var modules: UInt64 = 0
        if let head = symbols["modules"] { modules = head; grab(head, 2 * w) }
        if let head = symbols["modules"], let ml = try? ModuleLayout(types: found.btf), let first = word(head), first != head {
            let mod = first &- UInt64(ml.list)
            m.put(mod &+ UInt64(ml.list), word: head, w)
            grab(mod &+ UInt64(ml.name), ml.nameLength)
            grab(mod &+ UInt64(ml.base), w); grab(mod &+ UInt64(ml.size), 4)
            if let t = ml.textSize { grab(mod &+ UInt64(t), 4) }
            if let o = ml.orc { grab(mod &+ UInt64(o.ip), w); grab(mod &+ UInt64(o.entries), w); grab(mod &+ UInt64(o.count), 4) }
            if let k = ml.kallsyms, let ks = word(mod &+ UInt64(k)), let so = ml.symtab, let no = ml.numSymtab, let to = ml.strtab,
               let symtab = word(ks &+ UInt64(so)), let strtab = word(ks &+ UInt64(to)), let n = try? reader.u32(ks &+ UInt64(no)) {
                grab(mod &+ UInt64(k), w); grab(ks &+ UInt64(so), w); grab(ks &+ UInt64(to), w)
                let count = min(Int(n), 8), entry = w == 8 ? 24 : 16
                m.put(ks &+ UInt64(no), word: UInt64(count), 4)
                grab(symtab, count * entry)
                for i in 0..<count {
                    guard let name = try? reader.u32(symtab &+ UInt64(i * entry)), let s = try? reader.cString(strtab &+ UInt64(name), max: 64) else { continue }
                    m.put(strtab &+ UInt64(name), s + [0])
                }
            }
        }
        var sp: [UInt64] = [], cpsr: UInt32 = 0
        for v in guest.vcpus.prefix(4) { if case .arm(let r) = v.registers { sp.append(r.isAArch32State ? UInt64(r.spSVC) : r.spEL0) } }
        if case .arm(let r)? = guest.vcpus.first?.registers { cpsr = UInt32(truncatingIfNeeded: r.cpsr) }
        var flags = UInt8((vcpus - 1) << 2)
        if known["current_task"] == nil && known["pcpu_hot"] != nil { flags |= 1 }
        if own.absolute["current_task"] != nil || own.absolute["pcpu_hot"] != nil { flags |= 2 }
        if symbols["__per_cpu_start"] != nil { flags |= 16 }
        if symbols["init_task"] != nil { flags |= 32 }
        if symbols["runqueues"] != nil { flags |= 64 }
        let current = own.absolute["current_task"] ?? own.absolute["pcpu_hot"] ?? symbols["current_task"] ?? symbols["pcpu_hot"] ?? 0
        return layoutsSeed(architecture: a, flags: flags, btf: btf, task: task != 0 ? task : initTask, initTask: initTask, modules: modules,
                            perCPUOffset: symbols["__per_cpu_offset"] ?? 0, current: current, runqueues: symbols["runqueues"] ?? 0,
                            perCPUStart: symbols["__per_cpu_start"] ?? 0, sp: sp, cpsr: cpsr, memory: m)
    }

    /// layouts seeds for the 32-bit kernels, which carry no BTF (Debian's armmp and 686): BTF
    /// written with their structs' shapes (ARM32: thread_info with cpu_context_save in the
    /// task, thread_group; x86_32: 4-byte inactive_task_frame and pt_regs, and 6.7+'s
    /// thread_node in signal->thread_head), and memory laid out with those
    /// layouts: init_task and init (on a stack that holds the vCPU's SP_svc), runqueues, the
    /// per-CPU current_task, one module with two function symbols.
    static func layouts32(_ a: GuestArchitecture) -> [UInt8] {
        var b = BTFWriter()
        let int = b.int("unsigned int", size: 4)
        func s(_ name: String, _ size: Int, _ members: [(String, Int)]) -> Int { b.structure(name, size: size, members.map { ($0.0, int, $0.1) }) }
        // ARM32 as 6.1 has it (thread_group); x86_32 as 6.7+ (thread_node in signal->thread_head).
        let group: (String, Int) = a == .arm32 ? ("thread_group", 0x250) : ("thread_node", 0x250)
        let common: [(String, Int)] = [("__state", 0x60), ("stack", 0x64), ("flags", 0x6c), ("on_cpu", 0x74), ("tasks", 0x200), ("exit_state", 0x20c),
                                       ("pid", 0x218), ("tgid", 0x21c), ("real_parent", 0x224), group, ("comm", 0x2c0), ("signal", 0x300)]
        var taskMembers = common.map { ($0.0, int, $0.1) }
        if a == .arm32 {
            let context = s("cpu_context_save", 48, [("r4", 0), ("r5", 4), ("r6", 8), ("r7", 12), ("r8", 16), ("r9", 20), ("sl", 24), ("fp", 28), ("sp", 32), ("pc", 36)])
            let info = b.structure("thread_info", size: 0x50, [("flags", int, 0), ("preempt_count", int, 4), ("cpu", int, 0x10), ("cpu_context", context, 0x1c)])
            taskMembers.append(("thread_info", info, 0))
            _ = s("pt_regs", 72, [])
        } else {
            _ = s("inactive_task_frame", 24, [("flags", 0), ("si", 4), ("di", 8), ("bx", 12), ("bp", 16), ("ret_addr", 20)])
            let thread = s("thread_struct", 64, [("sp", 4)])
            taskMembers += [("thread", thread, 0x380), ("cpu", int, 0x18)]
            _ = s("pt_regs", 68, [("bx", 0), ("bp", 20), ("ax", 24), ("ip", 48), ("cs", 52), ("flags", 56), ("sp", 60), ("ss", 64)])
        }
        _ = b.structure("task_struct", size: 0x400, taskMembers)
        if a == .x86_32 { _ = s("signal_struct", 0x100, [("thread_head", 0x10)]) }
        _ = s("rq", 0x200, [("curr", 0x100), ("idle", 0x104)])
        let layout = s("module_layout", 20, [("base", 0), ("size", 4), ("text_size", 8)])
        _ = b.structure("module", size: 0x200, [("list", int, 4), ("name", int, 12), ("core_layout", layout, 0x100), ("kallsyms", int, 0x160)])
        _ = s("mod_kallsyms", 12, [("symtab", 0), ("num_symtab", 4), ("strtab", 8)])
        let btf = b.bytes

        let base: UInt64 = 0xc200_0000, text: UInt64 = 0xc010_0000
        var m = FuzzRegions.Builder()
        let tasks: [(UInt64, Int32, String, UInt64)] = [(base, 0, "swapper/0", base + 0x10000), (base + 0x1000, 1, "init", base + 0x12000)]
        for (i, (t, pid, comm, stack)) in tasks.enumerated() {
            let next = tasks[(i + 1) % tasks.count].0
            m.put(t + 0x200, word: next + 0x200, 4); m.put(t + 0x204, word: tasks[(i + 1) % tasks.count].0 + 0x200, 4)
            if a == .arm32 {
                m.put(t + 0x250, word: t + 0x250, 4); m.put(t + 0x254, word: t + 0x250, 4)
            } else {
                // Alone in its thread group: signal->thread_head and thread_node link each other.
                let head = base + 0x22000 + UInt64(i) * 0x100 + 0x10
                m.put(t + 0x300, word: head - 0x10, 4)
                m.put(head, word: t + 0x250, 4); m.put(head + 4, word: t + 0x250, 4)
                m.put(t + 0x250, word: head, 4); m.put(t + 0x254, word: head, 4)
            }
            m.put(t + 0x218, word: UInt64(pid), 4); m.put(t + 0x21c, word: UInt64(pid), 4)
            m.put(t + 0x2c0, Array(comm.utf8) + [0]); m.put(t + 0x60, word: i == 0 ? 0 : 1, 4)
            m.put(t + 0x64, word: stack, 4); m.put(t + 0x224, word: base, 4); m.put(t + 0x6c, word: i == 0 ? 0x0020_0000 : 0, 4)
            if a == .arm32 {
                for r in 0..<8 { m.put(t + 0x1c + UInt64(4 * r), word: stack + 0x1f00 + UInt64(4 * r), 4) }   // r4…r11
                m.put(t + 0x1c + 32, word: stack + 0x1e00, 4); m.put(t + 0x1c + 36, word: text + 0x40, 4)      // sp, pc
                // The user registers at the top of init's stack (USR mode).
                if i == 1 { let regs = stack + 8192 - 72 - 8; m.put(regs + 52, word: 0xbefff000, 4); m.put(regs + 60, word: 0x10400, 4); m.put(regs + 64, word: 0x10, 4) }
            } else {
                m.put(t + 0x384, word: stack + 0x1e00, 4)
                m.put(stack + 0x1e00 + 16, word: stack + 0x1f00, 4); m.put(stack + 0x1e00 + 20, word: text + 0x40, 4)
                if i == 1 { let regs = stack + 8192 - 68 - 8; m.put(regs + 48, word: 0x8049000, 4); m.put(regs + 52, word: 0x73, 4); m.put(regs + 56, word: 0x246, 4); m.put(regs + 60, word: 0xbfff0000, 4); m.put(regs + 64, word: 0x7b, 4) }
            }
        }
        // Per-CPU: __per_cpu_offset[0] = 0x1000; current_task and runqueues above it.
        let perCPU = base + 0x20000, current = base + 0x20100, runqueues = base + 0x20200
        m.put(perCPU, word: 0x1000, 4)
        m.put(current + 0x1000, word: tasks[1].0, 4)
        m.put(runqueues + 0x1000 + 0x100, word: tasks[1].0, 4); m.put(runqueues + 0x1000 + 0x104, word: tasks[0].0, 4)
        // The module list: head, one module, its symbols.
        let head = base + 0x21000, mod = base + 0x21100, ks = base + 0x21400, symtab = base + 0x21500, strtab = base + 0x21600
        m.put(head, word: mod + 4, 4); m.put(mod + 4, word: head, 4)
        m.put(mod + 12, Array("rfkill".utf8) + [0])
        m.put(mod + 0x100, word: 0xbf00_0000, 4); m.put(mod + 0x104, word: 0x2000, 4); m.put(mod + 0x108, word: 0x1000, 4)
        m.put(mod + 0x160, word: ks, 4); m.put(ks, word: symtab, 4); m.put(ks + 4, word: 2, 4); m.put(ks + 8, word: strtab, 4)
        for (i, (name, value)) in [(1, UInt64(0xbf00_0010)), (13, 0xbf00_0100)].enumerated() {
            m.put(symtab + UInt64(16 * i), word: UInt64(name), 4); m.put(symtab + UInt64(16 * i + 4), word: value, 4); m.put(symtab + UInt64(16 * i + 12), [0x12])
        }
        m.put(strtab, Array("\0rfkill_read\0rfkill_poll\0".utf8))
        // SP_svc in init's stack: ARM32 finds the current task by it.
        let sp = tasks[1].3 + 0x1e00
        return layoutsSeed(architecture: a, flags: 16 | 32 | 64, btf: btf, task: tasks[1].0, initTask: base, modules: head,
                            perCPUOffset: perCPU, current: current, runqueues: runqueues, perCPUStart: base + 0x20000, sp: [sp],
                            cpsr: a == .arm32 ? 0x6000_01d3 : 0, memory: m)
    }
}
