import VCPUContext

/// The sleeping locks a task can wait on, and where their types keep the waiters' queue and
/// the owner (from the guest's BTF or DWARF). A task asleep in `down_write()`, `mutex_lock()`
/// or `down()` keeps its waiter {list, task, …} on its own stack, linked into the lock's
/// `wait_list`: from the waiter, the lock; from the lock, its owner and every waiter.
public enum LockKind: String, Sendable, Equatable, Codable {
    case rwsem = "rw_semaphore", mutex, semaphore

    var waiterType: String {
        switch self {
        case .rwsem: "rwsem_waiter"
        case .mutex: "mutex_waiter"
        case .semaphore: "semaphore_waiter"
        }
    }

    /// Flag bits kept in the owner word (RWSEM_OWNER_FLAGS_MASK, MUTEX_FLAGS).
    var ownerFlags: UInt64 {
        switch self {
        case .rwsem: 0x3
        case .mutex: 0x7
        case .semaphore: 0
        }
    }

    /// The lock a task waits on, told by the function it sleeps in.
    public static func waitedOn(inFrames names: [String]) -> LockKind? {
        for n in names {
            if n.hasPrefix("rwsem_down_") { return .rwsem }
            if n.hasPrefix("__mutex_lock") || n == "mutex_lock_slowpath" || n.hasPrefix("__mutex_lock_slowpath") { return .mutex }
            if n == "__down" || n.hasPrefix("__down_") || n == "___down_common" { return .semaphore }
        }
        return nil
    }
}

public struct LockLayout: Sendable {
    struct Offsets: Sendable { let waitList: Int, owner: Int?, waiterTask: Int }
    let offsets: [LockKind: Offsets]

    public init(types: any KernelTypes) {
        var found: [LockKind: Offsets] = [:]
        for kind in [LockKind.rwsem, .mutex, .semaphore] {
            guard let list = types.offset(of: "wait_list", in: kind.rawValue), let task = types.offset(of: "task", in: kind.waiterType),
                  types.offset(of: "list", in: kind.waiterType) == 0 else { continue }
            found[kind] = Offsets(waitList: list, owner: kind == .semaphore ? nil : types.offset(of: "owner", in: kind.rawValue), waiterTask: task)
        }
        offsets = found
    }
}

/// What a blocked task waits for: the lock, its owner and its queue, in the kernel's order.
public struct LockWait: Sendable, Equatable {
    public let kind: LockKind
    public let lock: UInt64
    /// The owning task (flags masked); nil when the lock keeps none (a semaphore) or none holds it.
    public let owner: UInt64?
    /// An rw_semaphore held by readers: `owner` is then only the last reader to take it.
    public let readerOwned: Bool
    /// The tasks queued on it, first to be woken first.
    public let waiters: [UInt64]
    /// Where its waiter was found on the task's stack.
    public let waiterAt: UInt64

    static let maxWaiters = 1024

    /// Finds `task`'s waiter on its kernel stack, `[sp, stackTop)`, and walks the queue it is
    /// on (bounded, each link checked both ways). `isTask` says whether an address is a
    /// task_struct of the task list.
    public static func find(task: UInt64, kind: LockKind, sp: UInt64, stackTop: UInt64, reader: KernelReader, layout: LockLayout,
                            isTask: (UInt64) -> Bool) -> Result<LockWait, KernelDataError> {
        Result { () throws(KernelDataError) in
            guard let o = layout.offsets[kind] else { throw KernelDataError("lock", "the kernel's types do not describe \(kind.rawValue) and \(kind.waiterType)") }
            let w = UInt64(reader.wordSize)
            guard sp < stackTop, stackTop - sp <= 64 << 10 else { throw KernelDataError("lock", "no kernel stack to search for the waiter") }
            func word(_ a: UInt64) -> UInt64? { try? reader.word(a) }
            /// A list node whose neighbours link back to it.
            func linked(_ node: UInt64) -> (next: UInt64, prev: UInt64)? {
                guard let next = word(node), let prev = word(node &+ w), next != node,
                      word(next &+ w) == node, word(prev) == node else { return nil }
                return (next, prev)
            }
            var waiter: UInt64? = nil
            var a = (sp &+ w - 1) & ~(w - 1)
            while a &+ UInt64(o.waiterTask) &+ w <= stackTop {
                if word(a &+ UInt64(o.waiterTask)) == task, linked(a) != nil { waiter = a; break }
                a &+= w
            }
            guard let waiter else { throw KernelDataError("lock", "no \(kind.waiterType) naming it on its stack") }
            // Round the queue from the waiter: waiters' nodes name tasks, the head is the lock's.
            // Waiters met before the head (from ours on) and after it: the kernel wakes from
            // the head's next, so the queue is `after + before`.
            var before: [UInt64] = [], after: [UInt64] = [], head: UInt64? = nil
            var node = waiter
            for _ in 0..<maxWaiters {
                guard let (next, _) = linked(node) else { throw KernelDataError("lock", "the wait queue breaks at \(hex(node))") }
                if let t = word(node &+ UInt64(o.waiterTask)), isTask(t) { if head == nil { before.append(t) } else { after.append(t) } } else {
                    guard head == nil else { throw KernelDataError("lock", "two nodes of the queue are no waiters (\(hex(head!)), \(hex(node)))") }
                    head = node
                }
                node = next
                if node == waiter { break }
            }
            guard node == waiter else { throw KernelDataError("lock", "the wait queue is longer than \(maxWaiters)") }
            guard let head else { throw KernelDataError("lock", "the wait queue has no head") }
            let lock = head &- UInt64(o.waitList)
            var owner: UInt64? = nil, readerOwned = false
            if let ownerOffset = o.owner, let raw = word(lock &+ UInt64(ownerOffset)) {
                readerOwned = kind == .rwsem && raw & 1 != 0
                let t = raw & ~kind.ownerFlags
                owner = t == 0 ? nil : t
            }
            return LockWait(kind: kind, lock: lock, owner: owner, readerOwned: readerOwned,
                            waiters: after + before,
                            waiterAt: waiter)
        }
    }
}
