/* A stand-in for Xen's libraries, serving a real core file as a live domain.
 *
 * The live-path tests build this file into one shared object and link it under the names
 * xenctx-swift loads (libxenctrl.so.4.17, libxenforeignmemory.so.1, libxenguest.so.4.17),
 * then run xenctx-swift with XENCTX_XEN_LIBDIR pointing at it. It exports the functions the
 * live bridge resolves, with the prototypes of Xen's installed headers (included below, so
 * the compiler checks every signature), and follows their conventions: 0 or a count on
 * success, -1 with errno on failure, per-frame negative errnos from a foreign mapping.
 *
 * What it proves is our logic against Xen's documented interface, not Xen itself: the
 * domain is a core, so it never runs, and what a core does not hold (EFER of an HVM vCPU,
 * which vCPUs Xen took down) comes from the environment or from the contexts' own flags.
 *
 * Configuration (environment, read once):
 *   XENSTANDIN_CORE=PATH       the core served as the domain (required)
 *   XENSTANDIN_DOMID=N         its domain id (default 1; dom0 exists too)
 *   XENSTANDIN_LOG=PATH        one line per event, appended: "pause 1", "unpause 0", "map N",
 *                              "write-mapping 1", "dumpcore", "domain destroyed", ...
 *   XENSTANDIN_FAIL=FN@N,...   FN fails (errno EIO) from its Nth call on (default 1)
 *   XENSTANDIN_VANISH_AFTER=K  the domain is destroyed after K calls that name it
 *   XENSTANDIN_MAP_FAIL_AFTER=K  after K frames have mapped, every frame fails (-EFAULT)
 *   XENSTANDIN_HVM_CPU=EFER:CR0  x86 HVM: what the HVM CPU save record says (hex)
 *   XENSTANDIN_CHANGES_AT_PAUSE=1  the domain "runs" until its first pause: every page
 *                              mapped before then reads as its complement, until the pause,
 *                              when the mappings still open show the true pages (a mapping
 *                              shows a frame as it is now, on Xen); what was copied of them
 *                              before is stale
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xenctrl.h>
#include <xenforeignmemory.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xen/hvm/save.h>
#endif

enum { PAGE = 4096, EM_386_ = 3, EM_ARM_ = 40 };
static const uint64_t MAGIC_HVM = 0xF00FEBEEull, INVALID = ~0ull;

struct slot { uint64_t key, slot; };

static struct {
    int loaded, failed;
    const uint8_t *base;
    size_t size;
    uint16_t machine;
    int hvm;
    uint64_t nr_vcpus, nr_pages, entry_size;
    const uint8_t *contexts, *pages;
    struct slot *index;        /* frame as the guest's mappings name it -> slot, sorted */
    size_t index_count;
    uint64_t max_gpfn;
    unsigned major, minor;
    const uint8_t *version_note;   /* the core's XEN_ELFNOTE_DUMPCORE_XEN_VERSION, 1280 bytes */
    char caps[1024];
    uint32_t domid;
    int pause_count;
    long calls, vanish_after, map_fail_after, frames_mapped;
    int changes_at_pause, ever_paused;
    /* Mappings made before the first pause (XENSTANDIN_CHANGES_AT_PAUSE), to make true then. */
    struct running_map { uint8_t *m; size_t pages; uint64_t *frames; } running[256];
    size_t running_count;
    uint64_t efer, cr0;
    int has_hvm_cpu;
} S;

/* ---- the event log (async-signal-safe: the tool unpauses from a signal handler) ---- */

static void log_event(const char *what, long number) {
    const char *path = getenv("XENSTANDIN_LOG");
    if (!path) return;
    char line[256];
    size_t n = 0;
    for (const char *p = what; *p && n < 200; p++) line[n++] = *p;
    if (number >= 0) {
        char digits[24];
        int d = 0;
        long v = number;
        do { digits[d++] = (char)('0' + v % 10); v /= 10; } while (v && d < 20);
        line[n++] = ' ';
        while (d) line[n++] = digits[--d];
    }
    line[n++] = '\n';
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    ssize_t ignored = write(fd, line, n);
    (void)ignored;
    close(fd);
}

/* ---- the core ---- */

static uint16_t u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t u32(const uint8_t *p) { return (uint32_t)u16(p) | (uint32_t)u16(p + 2) << 16; }
static uint64_t u64(const uint8_t *p) { return (uint64_t)u32(p) | (uint64_t)u32(p + 4) << 32; }

static int by_key(const void *a, const void *b) {
    const struct slot *x = a, *y = b;
    return x->key < y->key ? -1 : x->key > y->key;
}

/* Finds a section by name; 0 when absent or outside the file. */
static int section(const char *name, const uint8_t **data, uint64_t *size, uint64_t *entsize) {
    const uint8_t *h = S.base;
    uint64_t shoff = u64(h + 40);
    uint16_t shnum = u16(h + 60), shstrndx = u16(h + 62);
    if (shnum > 64 || shstrndx >= shnum || shoff > S.size || S.size - shoff < (uint64_t)shnum * 64) return 0;
    const uint8_t *strtab = h + shoff + (uint64_t)shstrndx * 64;
    uint64_t stroff = u64(strtab + 24), strsize = u64(strtab + 32);
    if (stroff > S.size || strsize > S.size - stroff) return 0;
    for (uint16_t i = 0; i < shnum; i++) {
        const uint8_t *sh = h + shoff + (uint64_t)i * 64;
        uint32_t nameoff = u32(sh);
        size_t len = strlen(name);
        if (nameoff >= strsize || strsize - nameoff <= len) continue;
        if (memcmp(S.base + stroff + nameoff, name, len + 1) != 0) continue;
        uint64_t off = u64(sh + 24), sz = u64(sh + 32);
        if (off > S.size || sz > S.size - off) return 0;
        *data = S.base + off;
        *size = sz;
        if (entsize) *entsize = u64(sh + 56);
        return 1;
    }
    return 0;
}

static void parse_env(void) {
    const char *v;
    S.domid = (v = getenv("XENSTANDIN_DOMID")) ? (uint32_t)strtoul(v, NULL, 0) : 1;
    S.vanish_after = (v = getenv("XENSTANDIN_VANISH_AFTER")) ? strtol(v, NULL, 0) : -1;
    S.map_fail_after = (v = getenv("XENSTANDIN_MAP_FAIL_AFTER")) ? strtol(v, NULL, 0) : -1;
    S.changes_at_pause = (v = getenv("XENSTANDIN_CHANGES_AT_PAUSE")) && strcmp(v, "1") == 0;
    if ((v = getenv("XENSTANDIN_HVM_CPU"))) {
        char *end;
        S.efer = strtoull(v, &end, 16);
        if (*end == ':') { S.cr0 = strtoull(end + 1, NULL, 16); S.has_hvm_cpu = 1; }
    }
}

static int load(void) {
    if (S.loaded) return S.failed ? -1 : 0;
    S.loaded = 1;
    S.failed = 1;
    parse_env();
    const char *path = getenv("XENSTANDIN_CORE");
    if (!path) { errno = ENOENT; return -1; }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 64) { close(fd); errno = EINVAL; return -1; }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return -1;
    S.base = m;
    S.size = (size_t)st.st_size;
    if (memcmp(S.base, "\177ELF", 4) != 0 || S.base[4] != 2) { errno = EINVAL; return -1; }
    S.machine = u16(S.base + 18);

    const uint8_t *notes, *data;
    uint64_t notes_size, size, entsize;
    if (!section(".note.Xen", &notes, &notes_size, NULL)) { errno = EINVAL; return -1; }
    for (uint64_t off = 0; off + 12 <= notes_size;) {
        uint32_t namesz = u32(notes + off), descsz = u32(notes + off + 4), type = u32(notes + off + 8);
        uint64_t desc = off + 12 + ((namesz + 3ull) & ~3ull);
        if (desc > notes_size || descsz > notes_size - desc) break;
        const uint8_t *d = notes + desc;
        if (type == 0x2000001 && descsz >= 32) {
            S.hvm = u64(d) == MAGIC_HVM;
            S.nr_vcpus = u64(d + 8);
            S.nr_pages = u64(d + 16);
        } else if (type == 0x2000002 && descsz >= 176 + 1024) {
            S.major = (unsigned)u64(d);
            S.minor = (unsigned)u64(d + 8);
            memcpy(S.caps, d + 176, sizeof S.caps - 1);
            if (descsz >= 1272) S.version_note = d;
        }
        off = desc + ((descsz + 3ull) & ~3ull);
    }
    if (S.machine == EM_ARM_) S.hvm = 1;   /* every ARM domain is an HVM domain to Xen */

    if (!section(".xen_prstatus", &S.contexts, &size, &entsize) || entsize == 0 || entsize > 8192 ||
        S.nr_vcpus == 0 || S.nr_vcpus > 4096 || size / entsize < S.nr_vcpus) { errno = EINVAL; return -1; }
    S.entry_size = entsize;
    uint64_t pages_size;
    if (!section(".xen_pages", &S.pages, &pages_size, NULL)) { errno = EINVAL; return -1; }
    uint64_t slots = pages_size / PAGE < S.nr_pages ? pages_size / PAGE : S.nr_pages;
    int pv = section(".xen_p2m", &data, &size, NULL);
    if (!pv && !section(".xen_pfn", &data, &size, NULL)) { errno = EINVAL; return -1; }
    uint64_t stride = pv ? 16 : 8;
    if (size / stride < slots) slots = size / stride;
    S.index = calloc(slots ? slots : 1, sizeof *S.index);
    if (!S.index) return -1;
    for (uint64_t i = 0; i < slots; i++) {
        uint64_t pfn = u64(data + i * stride);
        uint64_t key = pv ? u64(data + i * stride + 8) : pfn;   /* PV guests map machine frames */
        if (key == INVALID || pfn == INVALID) continue;
        S.index[S.index_count].key = key;
        S.index[S.index_count++].slot = i;
        if (pfn > S.max_gpfn) S.max_gpfn = pfn;
    }
    qsort(S.index, S.index_count, sizeof *S.index, by_key);
    S.failed = 0;
    return 0;
}

static const uint8_t *frame(uint64_t key) {
    size_t lo = 0, hi = S.index_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (S.index[mid].key < key) lo = mid + 1; else hi = mid;
    }
    if (lo == S.index_count || S.index[lo].key != key) return NULL;
    return S.pages + S.index[lo].slot * PAGE;
}

static int vcpu_online(uint32_t vcpu) {
    const uint8_t *c = S.contexts + vcpu * S.entry_size;
    if (S.machine == EM_ARM_) return u32(c) & 1;                      /* VGCF_online, ARM */
    return S.entry_size >= 520 && (u64(c + 512) & (1u << 5)) != 0;     /* VGCF_online, x86 */
}

/* ---- failure injection ---- */

/* Whether FN's nth call should fail, per XENSTANDIN_FAIL ("fn@n,fn2"). */
static int injected(const char *fn) {
    static struct { char name[64]; long calls; } counters[32];
    const char *spec = getenv("XENSTANDIN_FAIL");
    if (!spec) return 0;
    int c = 0;
    while (c < 32 && counters[c].name[0] && strcmp(counters[c].name, fn) != 0) c++;
    if (c == 32) return 0;
    if (!counters[c].name[0]) strncpy(counters[c].name, fn, sizeof counters[c].name - 1);
    long call = ++counters[c].calls;
    size_t len = strlen(fn);
    for (const char *p = spec; *p;) {
        const char *end = strchr(p, ',');
        size_t item = end ? (size_t)(end - p) : strlen(p);
        if (item >= len && strncmp(p, fn, len) == 0 && (item == len || p[len] == '@')) {
            long from = item == len ? 1 : strtol(p + len + 1, NULL, 10);
            if (call >= from) { log_event("injected failure:", call); errno = EIO; return 1; }
        }
        p += item + (end ? 1 : 0);
    }
    return 0;
}

/* Checks a call that names a domain: 0 when it may go on, -1/errno as Xen answers. */
static int domain_call(uint32_t domid, const char *fn) {
    if (load() != 0) return -1;
    if (injected(fn)) return -1;
    if (domid != S.domid) { errno = ESRCH; return -1; }
    S.calls++;
    if (S.vanish_after >= 0 && S.calls > S.vanish_after) {
        if (S.calls == S.vanish_after + 1) log_event("domain destroyed", -1);
        errno = ESRCH;
        return -1;
    }
    return 0;
}

/* ---- libxenctrl ---- */

static xc_interface *const the_interface = (xc_interface *)&S;
static xenforeignmemory_handle *const the_fmem = (xenforeignmemory_handle *)&S.index;

xc_interface *xc_interface_open(xentoollog_logger *logger, xentoollog_logger *dombuild_logger, unsigned open_flags) {
    (void)logger; (void)dombuild_logger; (void)open_flags;
    if (injected("xc_interface_open")) return NULL;
    return load() == 0 ? the_interface : NULL;
}

int xc_domain_getinfolist(xc_interface *xch, uint32_t first_domain, unsigned int max_domains, xc_domaininfo_t *info) {
    (void)xch;
    if (load() != 0 || injected("xc_domain_getinfolist")) return -1;
    if (max_domains == 0) return 0;
    int gone = S.vanish_after >= 0 && S.calls >= S.vanish_after;
    memset(info, 0, sizeof *info);
    if (first_domain == 0) { info->domain = 0; info->flags = XEN_DOMINF_running; return 1; }   /* dom0 */
    if (gone || first_domain > S.domid) return 0;
    S.calls++;
    info->domain = (domid_t)S.domid;
    info->flags = (S.hvm ? XEN_DOMINF_hvm_guest : 0) | (S.pause_count > 0 ? XEN_DOMINF_paused : XEN_DOMINF_blocked);
    info->tot_pages = S.nr_pages;
    info->max_pages = S.nr_pages;
    info->max_vcpu_id = (uint32_t)(S.nr_vcpus - 1);
    for (uint32_t v = 0; v < S.nr_vcpus; v++) info->nr_online_vcpus += (uint32_t)vcpu_online(v);
    return 1;
}

int xc_domain_pause(xc_interface *xch, uint32_t domid) {
    (void)xch;
    if (domain_call(domid, "xc_domain_pause") != 0) return -1;
    if (S.pause_count >= 255) { errno = EUSERS; return -1; }   /* Xen's controller pause limit */
    log_event("pause", ++S.pause_count);
    if (!S.ever_paused) {
        S.ever_paused = 1;
        /* The domain stops: its open mappings now show what it holds. */
        for (size_t r = 0; r < S.running_count; r++) {
            struct running_map *rm = &S.running[r];
            mprotect(rm->m, rm->pages * PAGE, PROT_READ | PROT_WRITE);
            for (size_t i = 0; i < rm->pages; i++) {
                const uint8_t *src = frame(rm->frames[i]);
                if (src) memcpy(rm->m + i * PAGE, src, PAGE);
            }
            mprotect(rm->m, rm->pages * PAGE, PROT_READ);
            free(rm->frames);
        }
        S.running_count = 0;
    }
    return 0;
}

int xc_domain_unpause(xc_interface *xch, uint32_t domid) {
    (void)xch;
    if (domain_call(domid, "xc_domain_unpause") != 0) return -1;
    if (S.pause_count == 0) { log_event("unpause of an unpaused domain", -1); errno = EINVAL; return -1; }
    log_event("unpause", --S.pause_count);
    return 0;
}

int xc_vcpu_getcontext(xc_interface *xch, uint32_t domid, uint32_t vcpu, vcpu_guest_context_any_t *ctxt) {
    (void)xch;
    if (domain_call(domid, "xc_vcpu_getcontext") != 0) return -1;
    if (vcpu >= S.nr_vcpus) { errno = ESRCH; return -1; }
    size_t n = S.entry_size < sizeof *ctxt ? S.entry_size : sizeof *ctxt;
    memcpy(ctxt, S.contexts + vcpu * S.entry_size, n);
    return 0;
}

int xc_vcpu_getinfo(xc_interface *xch, uint32_t domid, uint32_t vcpu, xc_vcpuinfo_t *info) {
    (void)xch;
    if (domain_call(domid, "xc_vcpu_getinfo") != 0) return -1;
    if (vcpu >= S.nr_vcpus) { errno = ESRCH; return -1; }
    memset(info, 0, sizeof *info);
    info->vcpu = vcpu;
    info->online = (uint8_t)vcpu_online(vcpu);
    return 0;
}

int xc_domain_get_guest_width(xc_interface *xch, uint32_t domid, unsigned int *guest_width) {
    (void)xch;
    if (domain_call(domid, "xc_domain_get_guest_width") != 0) return -1;
    *guest_width = S.machine == EM_386_ ? 4 : 8;
    return 0;
}

int xc_version(xc_interface *xch, int cmd, void *arg) {
    (void)xch;
    if (load() != 0 || injected("xc_version")) return -1;
    switch (cmd) {
    case XENVER_version: return (int)(S.major << 16 | S.minor);
    case XENVER_capabilities: memcpy(arg, S.caps, sizeof(xen_capabilities_info_t)); return 0;
    /* The rest of what the core's version note recorded, where xg_core.c got it from. */
    case XENVER_extraversion: if (!S.version_note) break; memcpy(arg, S.version_note + 16, 16); return 0;
    case XENVER_compile_info: if (!S.version_note) break; memcpy(arg, S.version_note + 32, 144); return 0;
    case XENVER_changeset: if (!S.version_note) break; memcpy(arg, S.version_note + 1200, 64); return 0;
    case XENVER_platform_parameters:
        if (!S.version_note) break;
        ((xen_platform_parameters_t *)arg)->virt_start = (xen_ulong_t)u64(S.version_note + 1264);
        return 0;
    default: break;
    }
    errno = ENOSYS;
    return -1;
}

int xc_domain_maximum_gpfn(xc_interface *xch, uint32_t domid, xen_pfn_t *gpfns) {
    (void)xch;
    if (domain_call(domid, "xc_domain_maximum_gpfn") != 0) return -1;
    *gpfns = (xen_pfn_t)S.max_gpfn;
    return 0;
}

#if defined(__x86_64__) || defined(__i386__)
int xc_domain_hvm_getcontext_partial(xc_interface *xch, uint32_t domid, uint16_t typecode, uint16_t instance,
                                     void *ctxt_buf, uint32_t size) {
    (void)xch;
    if (domain_call(domid, "xc_domain_hvm_getcontext_partial") != 0) return -1;
    /* A core has no HVM save record: only what the test says Xen's record held. */
    if (!S.hvm || typecode != HVM_SAVE_CODE(CPU) || instance >= S.nr_vcpus || !S.has_hvm_cpu ||
        size < sizeof(struct hvm_hw_cpu)) { errno = ENODATA; return -1; }
    struct hvm_hw_cpu *cpu = ctxt_buf;
    memset(cpu, 0, sizeof *cpu);
    cpu->msr_efer = S.efer;
    cpu->cr0 = S.cr0;
    return 0;
}
#endif

/* libxenguest's core writer, as `xl dump-core` runs it: the served core is this domain's core. */
int xc_domain_dumpcore(xc_interface *xch, uint32_t domid, const char *corename) {
    (void)xch;
    if (domain_call(domid, "xc_domain_dumpcore") != 0) return -1;
    int fd = open(corename, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    for (size_t done = 0; done < S.size;) {
        ssize_t n = write(fd, S.base + done, S.size - done);
        if (n <= 0) { close(fd); errno = EIO; return -1; }
        done += (size_t)n;
    }
    log_event("dumpcore", -1);
    return close(fd);
}

/* ---- libxenforeignmemory ---- */

xenforeignmemory_handle *xenforeignmemory_open(struct xentoollog_logger *logger, unsigned open_flags) {
    (void)logger; (void)open_flags;
    if (injected("xenforeignmemory_open")) return NULL;
    return load() == 0 ? the_fmem : NULL;
}

void *xenforeignmemory_map(xenforeignmemory_handle *fmem, uint32_t dom, int prot, size_t pages,
                           const xen_pfn_t arr[], int err[]) {
    (void)fmem;
    if (domain_call(dom, "xenforeignmemory_map") != 0) return NULL;
    if (prot & PROT_WRITE) { log_event("write-mapping", (long)pages); errno = EPERM; return NULL; }
    if (pages == 0 || pages > (1u << 20)) { errno = EINVAL; return NULL; }
    log_event("map", (long)pages);   /* one per call: what the pause costs is counted in calls */
    uint8_t *m = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return NULL;
    int any_failed = 0;
    for (size_t i = 0; i < pages; i++) {
        const uint8_t *src = frame((uint64_t)arr[i]);
        int e = 0;
        if (S.map_fail_after >= 0 && S.frames_mapped >= S.map_fail_after) e = -EFAULT;
        else if (!src) e = -EINVAL;   /* a frame the domain does not have, as Xen refuses it */
        else {
            memcpy(m + i * PAGE, src, PAGE);
            if (S.changes_at_pause && !S.ever_paused)
                for (size_t b = 0; b < PAGE; b++) m[i * PAGE + b] = (uint8_t)~m[i * PAGE + b];
            S.frames_mapped++;
        }
        if (err) err[i] = e;
        any_failed |= e != 0;
    }
    if (any_failed && !err) { munmap(m, pages * PAGE); errno = EFAULT; return NULL; }
    if (S.changes_at_pause && !S.ever_paused) {
        if (S.running_count == sizeof S.running / sizeof S.running[0]) { munmap(m, pages * PAGE); errno = ENOMEM; return NULL; }
        uint64_t *frames = malloc(pages * sizeof *frames);
        if (!frames) { munmap(m, pages * PAGE); errno = ENOMEM; return NULL; }
        for (size_t i = 0; i < pages; i++) frames[i] = (uint64_t)arr[i];
        S.running[S.running_count++] = (struct running_map){ m, pages, frames };
    }
    /* Read-only, as the tool asked: a write through this mapping faults, as it would on Xen. */
    mprotect(m, pages * PAGE, PROT_READ);
    return m;
}

int xenforeignmemory_unmap(xenforeignmemory_handle *fmem, void *addr, size_t pages) {
    (void)fmem;
    log_event("unmap", (long)pages);
    for (size_t r = 0; r < S.running_count; r++) {
        if (S.running[r].m != addr) continue;
        free(S.running[r].frames);
        S.running[r] = S.running[--S.running_count];
        break;
    }
    return munmap(addr, pages * PAGE);
}
