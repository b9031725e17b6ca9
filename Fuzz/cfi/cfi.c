/* Call chains with real CFI for the cfi fuzz target's seeds: leaf() is called through two
 * frames that keep callee-saved registers and locals on the stack; task_struct-like types
 * give the DWARF type lookups (sizes, member paths through anonymous members, arrays). */
struct thread_struct { unsigned long sp; unsigned long ip; };
struct list_head { struct list_head *next, *prev; };
struct task_struct {
    unsigned int __state;
    void *stack;
    union { int pid; struct { short lo, hi; }; };
    struct list_head tasks;
    char comm[16];
    struct thread_struct thread;
};
struct task_struct init_task;
volatile unsigned long sink;

__attribute__((noinline)) unsigned long leaf(unsigned long x) {
    volatile unsigned long local[4] = { x, x + 1, x + 2, x + 3 };
    while (sink != 0x5eed) sink = local[x & 3];
    return sink;
}
__attribute__((noinline)) unsigned long middle(unsigned long a, unsigned long b) {
    unsigned long keep = a * 3 + b;
    sink = leaf(keep);
    return keep + sink;
}
__attribute__((noinline)) unsigned long outer(struct task_struct *t) {
    unsigned long r = middle(t->thread.sp, (unsigned long)t->stack);
    return r + t->pid;
}
void _start(void) { sink = outer(&init_task); for (;;) {} }
