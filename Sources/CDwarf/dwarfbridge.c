#define _GNU_SOURCE
#include "dwarfbridge.h"
#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every libdw function used, once: declared as pointers and resolved from this list. */
#define DWB_FUNCTIONS(X) \
    X(dwfl_begin) X(dwfl_end) X(dwfl_report_begin) X(dwfl_report_offline) X(dwfl_report_end) \
    X(dwfl_addrmodule) X(dwfl_module_addrinfo) X(dwfl_module_addrdie) X(dwfl_module_getsrc) \
    X(dwfl_lineinfo) X(dwfl_standard_find_debuginfo) X(dwfl_offline_section_address) X(dwfl_errmsg) \
    X(dwfl_module_getsymtab) X(dwfl_module_getsym_info) X(dwfl_getmodules) X(dwfl_module_getdwarf) \
    X(dwarf_getscopes) X(dwarf_tag) X(dwarf_attr) X(dwarf_attr_integrate) X(dwarf_formstring) \
    X(dwarf_formudata) X(dwarf_getsrcfiles) X(dwarf_filesrc) X(dwarf_getscopes_die) \
    X(dwfl_attach_state) X(dwfl_module_getelf) X(dwfl_thread_state_registers) \
    X(dwfl_thread_state_register_pc) X(dwfl_getthread_frames) X(dwfl_frame_pc) \
    X(dwarf_nextcu) X(dwarf_offdie) X(dwarf_child) X(dwarf_siblingof) X(dwarf_diename) X(dwarf_hasattr) \
    X(dwarf_bytesize) X(dwarf_formref_die) X(dwarf_dieoffset) \
    X(gelf_getehdr) X(elf_nextscn) X(gelf_getshdr) X(elf_getdata) X(elf_getscn) X(gelf_getclass)
#define DECLARE(name) static __typeof__(name) *p_##name;
DWB_FUNCTIONS(DECLARE)

int dwb_load(char *err, size_t errlen) {
    static void *lib;
    if (lib) return 0;
    lib = dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) { snprintf(err, errlen, "cannot load libdw (%s): install libdw1 (elfutils)", dlerror()); return -1; }
#define LOAD(name) p_##name = (__typeof__(name) *)dlsym(lib, #name); \
        if (!p_##name) { snprintf(err, errlen, "libdw lacks %s", #name); lib = NULL; return -1; }
    DWB_FUNCTIONS(LOAD)
    return 0;
}

typedef struct {
    dwb_read_fn read; void *context;
    const uint64_t *regs; int nregs; uint64_t pc;
    uint64_t *pcs; int max; int count;
} unwind_t;
/* Structs found by name (a query names the same few structs many times). */
#define DWB_STRUCT_CACHE 64
typedef struct { char name[64]; Dwarf_Off offset; int found; } struct_cache_t;
/* An executable's .symtab read in place (see dwb_symbol_count). */
typedef struct {
    Elf *elf; const void *syms; const uint32_t *xndx; size_t count, nxndx; int is64;
    const char *strings; size_t strsize; GElf_Addr bias; int ready;
} symtab_t;
typedef struct {
    Dwfl *dwfl; Dwfl_Module *mod; int attached; unwind_t *current;
    struct_cache_t structs[DWB_STRUCT_CACHE]; int nstructs;
    symtab_t symtab;
} handle_t;
static char *debuginfo_path;
static Dwfl_Callbacks callbacks;

void *dwb_open(const char *path, char *err, size_t errlen) {
    callbacks.find_debuginfo = p_dwfl_standard_find_debuginfo;
    callbacks.section_address = p_dwfl_offline_section_address;
    callbacks.debuginfo_path = &debuginfo_path;
    handle_t *h = calloc(1, sizeof *h);
    if (!h) { snprintf(err, errlen, "out of memory"); return NULL; }
    h->dwfl = p_dwfl_begin(&callbacks);
    if (!h->dwfl) { snprintf(err, errlen, "%s", p_dwfl_errmsg(-1)); free(h); return NULL; }
    p_dwfl_report_begin(h->dwfl);
    h->mod = p_dwfl_report_offline(h->dwfl, "vmlinux", path, -1);
    if (!h->mod) { snprintf(err, errlen, "%s", p_dwfl_errmsg(-1)); p_dwfl_end(h->dwfl); free(h); return NULL; }
    p_dwfl_report_end(h->dwfl, NULL, NULL);
    return h;
}

void dwb_close(void *handle) {
    handle_t *h = handle;
    if (!h) return;
    p_dwfl_end(h->dwfl);
    free(h);
}

int dwb_has_dwarf(void *handle) {
    handle_t *h = handle;
    Dwarf_Addr bias;
    return p_dwfl_module_getdwarf(h->mod, &bias) != NULL;
}

static void copy(char *dst, size_t n, const char *src) { snprintf(dst, n, "%s", src ? src : ""); }

static const char *die_name(Dwarf_Die *die) {
    Dwarf_Attribute attr;
    return p_dwarf_formstring(p_dwarf_attr_integrate(die, DW_AT_name, &attr));
}

int dwb_lookup(void *handle, uint64_t address, dwb_frame *frames, int max) {
    handle_t *h = handle;
    if (max <= 0) return 0;
    GElf_Sym sym; GElf_Off off;
    const char *file = NULL; int line = 0, col = 0;
    Dwfl_Line *l = p_dwfl_module_getsrc(h->mod, address);
    if (l) { Dwarf_Addr a; file = p_dwfl_lineinfo(l, &a, &line, &col, NULL, NULL); }
    Dwarf_Addr bias = 0;
    Dwarf_Die *cu = p_dwfl_module_addrdie(h->mod, address, &bias);
    int count = 0;
    if (cu) {
        Dwarf_Die *scopes = NULL;
        int n = p_dwarf_getscopes(cu, address - bias, &scopes);
        /* dwarf_getscopes continues into an inlined function's abstract instance; the
         * concrete nesting (inlined instances up to the real function) is what
         * dwarf_getscopes_die gives for the innermost scope, as eu-addr2line -i uses. */
        if (n > 0) {
            Dwarf_Die inner = scopes[0];
            free(scopes);
            scopes = NULL;
            n = p_dwarf_getscopes_die(&inner, &scopes);
        }
        Dwarf_Files *files = NULL; size_t nfiles = 0;
        p_dwarf_getsrcfiles(cu, &files, &nfiles);
        for (int i = 0; i < n && count < max; i++) {
            int tag = p_dwarf_tag(&scopes[i]);
            if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram) continue;
            dwb_frame *f = &frames[count++];
            copy(f->function, sizeof f->function, die_name(&scopes[i]));
            copy(f->file, sizeof f->file, file);
            f->line = line; f->column = col; f->inlined = tag == DW_TAG_inlined_subroutine;
            if (tag == DW_TAG_subprogram) break;
            /* The caller's location is this inlined instance's call site. */
            Dwarf_Attribute attr; Dwarf_Word cf = 0, cl = 0, cc = 0;
            p_dwarf_formudata(p_dwarf_attr(&scopes[i], DW_AT_call_file, &attr), &cf);
            p_dwarf_formudata(p_dwarf_attr(&scopes[i], DW_AT_call_line, &attr), &cl);
            p_dwarf_formudata(p_dwarf_attr(&scopes[i], DW_AT_call_column, &attr), &cc);
            file = files && cf < nfiles ? p_dwarf_filesrc(files, cf, NULL, NULL) : NULL;
            line = (int)cl; col = (int)cc;
        }
        free(scopes);
    }
    /* libdwfl's own symbol lookup only where the DWARF names no function: its first call
     * sorts the whole symbol table again (the report already has one). */
    const char *symname = count == 0 ? p_dwfl_module_addrinfo(h->mod, address, &off, &sym, NULL, NULL, NULL) : NULL;
    if (count == 0 && (symname || file)) {
        copy(frames[0].function, sizeof frames[0].function, symname);
        copy(frames[0].file, sizeof frames[0].file, file);
        frames[0].line = line; frames[0].column = col; frames[0].inlined = 0;
        count = 1;
    }
    return count;
}

/* A vmlinux is an executable: its .symtab is read directly, entry by entry.
 * dwfl_module_getsym_info also looks up every symbol's section header (to relocate
 * ET_REL files), which is a third of building the table; other files keep that path. */
static void symtab_prepare(handle_t *h) {
    symtab_t *t = &h->symtab;
    if (t->ready) return;
    t->ready = 1;
    GElf_Ehdr eh;
    Elf *elf = p_dwfl_module_getelf(h->mod, &t->bias);
    if (!elf || !p_gelf_getehdr(elf, &eh) || (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)) return;
    int is64 = p_gelf_getclass(elf) == ELFCLASS64;
    size_t entsize = is64 ? sizeof(Elf64_Sym) : sizeof(Elf32_Sym);
    Elf_Scn *scn = NULL;
    Elf_Data *syms = NULL, *xndx = NULL, *strs = NULL;
    GElf_Shdr sh;
    while ((scn = p_elf_nextscn(elf, scn))) {
        if (!p_gelf_getshdr(scn, &sh)) continue;
        if (sh.sh_type == SHT_SYMTAB && !syms) {
            syms = p_elf_getdata(scn, NULL);
            Elf_Scn *strscn = p_elf_getscn(elf, sh.sh_link);
            strs = strscn ? p_elf_getdata(strscn, NULL) : NULL;
        } else if (sh.sh_type == SHT_SYMTAB_SHNDX && !xndx) {
            xndx = p_elf_getdata(scn, NULL);
        }
    }
    /* libelf hands the entries over in memory representation: read them as an array. */
    if (!syms || !strs || syms->d_type != ELF_T_SYM || !syms->d_buf || !strs->d_buf) return;
    t->syms = syms->d_buf; t->count = syms->d_size / entsize; t->is64 = is64;
    t->strings = strs->d_buf; t->strsize = strs->d_size;
    if (xndx && xndx->d_buf) { t->xndx = xndx->d_buf; t->nxndx = xndx->d_size / sizeof(uint32_t); }
    t->elf = elf;
}

int dwb_symbol_count(void *handle) {
    handle_t *h = handle;
    symtab_prepare(h);
    if (h->symtab.elf) return h->symtab.count > 0x7fffffff ? 0x7fffffff : (int)h->symtab.count;
    return p_dwfl_module_getsymtab(h->mod);
}

int dwb_symbol_strings(void *handle, const char **base, size_t *size) {
    handle_t *h = handle;
    symtab_prepare(h);
    if (!h->symtab.elf) return 0;
    *base = h->symtab.strings; *size = h->symtab.strsize;
    return 1;
}

int dwb_get_symbol(void *handle, int index, dwb_symbol *out) {
    handle_t *h = handle;
    GElf_Sym sym; GElf_Addr addr; GElf_Word shndx; Elf *elf; Dwarf_Addr bias;
    const char *name;
    symtab_prepare(h);
    if (h->symtab.elf) {
        symtab_t *t = &h->symtab;
        if (index < 0 || (size_t)index >= t->count) return 0;
        if (t->is64) {
            const Elf64_Sym *e = (const Elf64_Sym *)t->syms + index;
            sym.st_name = e->st_name; sym.st_info = e->st_info; sym.st_shndx = e->st_shndx;
            sym.st_value = e->st_value; sym.st_size = e->st_size;
        } else {
            const Elf32_Sym *e = (const Elf32_Sym *)t->syms + index;
            sym.st_name = e->st_name; sym.st_info = e->st_info; sym.st_shndx = e->st_shndx;
            sym.st_value = e->st_value; sym.st_size = e->st_size;
        }
        shndx = sym.st_shndx;
        if (shndx == SHN_XINDEX) shndx = t->xndx && (size_t)index < t->nxndx ? t->xndx[index] : SHN_UNDEF;
        /* A name must start inside the string table and end there (the file is hostile). */
        const char *nul;
        if (sym.st_name >= t->strsize || !(nul = memchr(t->strings + sym.st_name, 0, t->strsize - sym.st_name))) return 0;
        name = t->strings + sym.st_name;
        out->name_length = (size_t)(nul - name);
        addr = sym.st_value + (shndx == SHN_ABS ? 0 : t->bias);
    } else {
        name = p_dwfl_module_getsym_info(h->mod, index, &sym, &addr, &shndx, &elf, &bias);
        if (name) out->name_length = strlen(name);
    }
    /* ARM mapping symbols ($a, $t, $d) mark code and data, they name nothing. */
    if (!name || !*name || name[0] == '$') return 0;
    int type = GELF_ST_TYPE(sym.st_info), bind = GELF_ST_BIND(sym.st_info);
    if (type == STT_FILE || type == STT_SECTION) return 0;
    char c;
    if (shndx == SHN_ABS) c = 'A';
    else if (shndx == SHN_UNDEF) c = 'U';
    else if (type == STT_FUNC) c = 'T';
    else if (type == STT_OBJECT || type == STT_NOTYPE || type == STT_TLS) c = 'D';
    else c = '?';
    if (bind == STB_LOCAL && c != '?') c = (char)(c - 'A' + 'a');
    if (bind == STB_WEAK && c != '?') c = c == 'T' || c == 't' ? 'W' : 'V';
    out->address = addr; out->size = sym.st_size; out->type = c; out->name = name;
    return 1;
}

/* One pseudo-thread, whose registers and memory are those of the vCPU being unwound. */
static pid_t cfi_next_thread(Dwfl *dwfl, void *arg, void **thread_arg) { (void)dwfl; (void)arg; (void)thread_arg; return 0; }
static bool cfi_get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_arg) { (void)dwfl; (void)tid; *thread_arg = arg; return true; }
static bool cfi_memory_read(Dwfl *dwfl, Dwarf_Addr address, Dwarf_Word *result, void *arg) {
    (void)dwfl;
    handle_t *h = arg;
    uint64_t v;
    if (h->current->read(h->current->context, address, &v) != 0) return false;
    *result = v;
    return true;
}
static bool cfi_set_initial_registers(Dwfl_Thread *thread, void *arg) {
    handle_t *h = arg;
    if (!p_dwfl_thread_state_registers(thread, 0, (unsigned)h->current->nregs, (const Dwarf_Word *)h->current->regs)) return false;
    p_dwfl_thread_state_register_pc(thread, h->current->pc);
    return true;
}
static const Dwfl_Thread_Callbacks cfi_callbacks = {
    .next_thread = cfi_next_thread, .get_thread = cfi_get_thread,
    .memory_read = cfi_memory_read, .set_initial_registers = cfi_set_initial_registers,
};
static int cfi_frame(Dwfl_Frame *state, void *arg) {
    unwind_t *u = arg;
    Dwarf_Addr pc; bool activation;
    if (!p_dwfl_frame_pc(state, &pc, &activation)) return DWARF_CB_ABORT;
    u->pcs[u->count++] = pc;
    return u->count < u->max ? DWARF_CB_OK : DWARF_CB_ABORT;
}

int dwb_unwind(void *handle, const uint64_t *regs, int nregs, uint64_t pc,
               dwb_read_fn read, void *context, uint64_t *pcs, int max, char *err, size_t errlen) {
    handle_t *h = handle;
    err[0] = 0;
    if (!h->attached) {
        GElf_Addr bias;
        Elf *elf = p_dwfl_module_getelf(h->mod, &bias);
        if (!elf || !p_dwfl_attach_state(h->dwfl, elf, 1, &cfi_callbacks, h)) {
            snprintf(err, errlen, "%s", p_dwfl_errmsg(-1));
            return -1;
        }
        h->attached = 1;
    }
    unwind_t u = { read, context, regs, nregs, pc, pcs, max, 0 };
    h->current = &u;
    int rc = p_dwfl_getthread_frames(h->dwfl, 1, cfi_frame, &u);
    if (rc != 0 && u.count < max) snprintf(err, errlen, "%s", p_dwfl_errmsg(-1));
    h->current = NULL;
    return u.count;
}

/* ---- Types: struct sizes and member offsets from DWARF (for kernels without BTF). ---- */

/* The first full definition (not a declaration) of `struct name` among the compilation
 * units' top-level DIEs; the search is bounded by the file's own CU count. */
static int scan_struct(Dwarf *dbg, const char *name, Dwarf_Die *out);
static int find_struct(handle_t *h, const char *name, Dwarf_Die *out) {
    Dwarf_Addr bias;
    Dwarf *dbg = p_dwfl_module_getdwarf(h->mod, &bias);
    if (!dbg) return -1;
    for (int i = 0; i < h->nstructs; i++) {
        if (strcmp(h->structs[i].name, name) != 0) continue;
        if (!h->structs[i].found) return -1;
        return p_dwarf_offdie(dbg, h->structs[i].offset, out) ? 0 : -1;
    }
    int rc = scan_struct(dbg, name, out);
    if (h->nstructs < DWB_STRUCT_CACHE && strlen(name) < sizeof h->structs[0].name) {
        struct_cache_t *c = &h->structs[h->nstructs++];
        snprintf(c->name, sizeof c->name, "%s", name);
        c->found = rc == 0;
        c->offset = rc == 0 ? p_dwarf_dieoffset(out) : 0;
    }
    return rc;
}

static int scan_struct(Dwarf *dbg, const char *name, Dwarf_Die *out) {
    Dwarf_Off off = 0, next; size_t hsize;
    while (p_dwarf_nextcu(dbg, off, &next, &hsize, NULL, NULL, NULL) == 0) {
        Dwarf_Die cu, die;
        if (p_dwarf_offdie(dbg, off + hsize, &cu) && p_dwarf_child(&cu, &die) == 0) {
            do {
                if (p_dwarf_tag(&die) != DW_TAG_structure_type || p_dwarf_hasattr(&die, DW_AT_declaration)) continue;
                const char *n = p_dwarf_diename(&die);
                if (n && strcmp(n, name) == 0) { *out = die; return 0; }
            } while (p_dwarf_siblingof(&die, &die) == 0);
        }
        off = next;
    }
    return -1;
}

/* Through typedefs and qualifiers to the type a DIE's DW_AT_type names (bounded). */
static int peel(Dwarf_Die *die, Dwarf_Die *out) {
    Dwarf_Attribute a;
    Dwarf_Die cur = *die;
    if (!p_dwarf_attr_integrate(&cur, DW_AT_type, &a) || !p_dwarf_formref_die(&a, out)) return -1;
    for (int i = 0; i < 16; i++) {
        int tag = p_dwarf_tag(out);
        if (tag != DW_TAG_typedef && tag != DW_TAG_const_type && tag != DW_TAG_volatile_type && tag != DW_TAG_restrict_type) return 0;
        cur = *out;
        if (!p_dwarf_attr_integrate(&cur, DW_AT_type, &a) || !p_dwarf_formref_die(&a, out)) return -1;
    }
    return -1;
}

/* The member `name` of struct/union `s`, looking into anonymous members: its offset added
 * to *offset, its DIE in *member. */
static int find_member(Dwarf_Die *s, const char *name, long *offset, Dwarf_Die *member, int depth) {
    Dwarf_Die m;
    if (depth > 8 || p_dwarf_child(s, &m) != 0) return -1;
    do {
        if (p_dwarf_tag(&m) != DW_TAG_member) continue;
        Dwarf_Attribute a; Dwarf_Word at = 0;
        if (p_dwarf_attr_integrate(&m, DW_AT_data_member_location, &a) && p_dwarf_formudata(&a, &at) != 0) continue;
        const char *n = p_dwarf_diename(&m);
        if (!n) {
            Dwarf_Die inner;
            long o = 0;
            if (peel(&m, &inner) == 0 && find_member(&inner, name, &o, member, depth + 1) == 0) { *offset += (long)at + o; return 0; }
        } else if (strcmp(n, name) == 0) {
            if (p_dwarf_hasattr(&m, DW_AT_bit_size)) return -1;   /* a bitfield has no byte offset */
            *offset += (long)at; *member = m; return 0;
        }
    } while (p_dwarf_siblingof(&m, &m) == 0);
    return -1;
}

long dwb_struct_size(void *handle, const char *name) {
    Dwarf_Die s;
    if (find_struct(handle, name, &s) != 0) return -1;
    int size = p_dwarf_bytesize(&s);
    return size < 0 ? -1 : size;
}

long dwb_member_offset(void *handle, const char *structname, const char *path) {
    Dwarf_Die s;
    if (find_struct(handle, structname, &s) != 0) return -1;
    char part[128];
    long offset = 0;
    const char *p = path;
    while (*p) {
        size_t n = strcspn(p, ".");
        if (n == 0 || n >= sizeof part) return -1;
        memcpy(part, p, n); part[n] = 0;
        Dwarf_Die member;
        if (find_member(&s, part, &offset, &member, 0) != 0) return -1;
        p += n;
        if (*p == '.') {
            p++;
            if (peel(&member, &s) != 0) return -1;
            /* `mem.base` is `mem[0].base`: through arrays to their element type. */
            for (int k = 0; k < 4 && p_dwarf_tag(&s) == DW_TAG_array_type; k++) {
                Dwarf_Die array = s;
                if (peel(&array, &s) != 0) return -1;
            }
        }
    }
    return offset;
}

int dwb_array_shape(void *handle, const char *structname, const char *path, long *count, long *stride) {
    Dwarf_Die s;
    if (find_struct(handle, structname, &s) != 0) return -1;
    char part[128];
    long offset = 0;
    const char *p = path;
    Dwarf_Die member;
    while (*p) {
        size_t n = strcspn(p, ".");
        if (n == 0 || n >= sizeof part) return -1;
        memcpy(part, p, n); part[n] = 0;
        if (find_member(&s, part, &offset, &member, 0) != 0) return -1;
        p += n;
        if (*p == '.') {
            p++;
            if (peel(&member, &s) != 0) return -1;
            for (int k = 0; k < 4 && p_dwarf_tag(&s) == DW_TAG_array_type; k++) {
                Dwarf_Die array = s;
                if (peel(&array, &s) != 0) return -1;
            }
        }
    }
    Dwarf_Die array, sub, element;
    if (peel(&member, &array) != 0 || p_dwarf_tag(&array) != DW_TAG_array_type) return -1;
    if (p_dwarf_child(&array, &sub) != 0 || p_dwarf_tag(&sub) != DW_TAG_subrange_type) return -1;
    Dwarf_Attribute a; Dwarf_Word v = 0;
    if (p_dwarf_attr_integrate(&sub, DW_AT_count, &a) && p_dwarf_formudata(&a, &v) == 0) *count = (long)v;
    else if (p_dwarf_attr_integrate(&sub, DW_AT_upper_bound, &a) && p_dwarf_formudata(&a, &v) == 0) *count = (long)v + 1;
    else return -1;
    if (peel(&array, &element) != 0) return -1;
    int size = p_dwarf_bytesize(&element);
    if (size <= 0) return -1;
    *stride = size;
    return 0;
}
