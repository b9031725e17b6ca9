/* A small bridge to elfutils' libdwfl/libdw, loaded with dlopen so that xenctx-swift runs
 * where libdw is absent (a minimal dom0) and only --vmlinux needs it. */
#ifndef DWARFBRIDGE_H
#define DWARFBRIDGE_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char function[256];
    char file[512];
    int line;
    int column;
    int inlined;          /* 1: an inlined instance; 0: the containing function */
} dwb_frame;

typedef struct {
    uint64_t address;
    uint64_t size;
    char type;            /* System.map-style: T/t text, D/d data, A absolute, U undefined, ? other */
    const char *name;     /* owned by libdwfl, valid while the file is open */
    size_t name_length;   /* strlen(name) */
} dwb_symbol;

int dwb_load(char *err, size_t errlen);
/* Opens an ELF file (vmlinux or a module) offline; NULL with a message on failure. */
void *dwb_open(const char *path, char *err, size_t errlen);
void dwb_close(void *handle);
/* Source frames for a link-time address, innermost (inlined) first; returns the count. */
int dwb_lookup(void *handle, uint64_t address, dwb_frame *frames, int max);
/* The ELF symbol table: the number of symbols, and symbol i (0 when i is not a named symbol). */
int dwb_symbol_count(void *handle);
int dwb_get_symbol(void *handle, int index, dwb_symbol *out);
/* Where every name dwb_get_symbol gives lies (an executable's .strtab, valid while the file
 * is open): 1 with base and size set, 0 when names come from elsewhere (libdwfl's path). */
int dwb_symbol_strings(void *handle, const char **base, size_t *size);
/* DWARF CFI unwinding by libdwfl's own unwinder: registers in DWARF numbering (x86_64:
 * rax rdx rcx rbx rsi rdi rbp rsp r8-r15; aarch64: x0-x30 sp; arm: r0-r15), guest memory
 * through `read` (0 on success). Fills pcs (innermost first, the first is `pc`) and returns
 * their count; on an early stop, err says why. */
typedef int (*dwb_read_fn)(void *context, uint64_t address, uint64_t *value);
int dwb_unwind(void *handle, const uint64_t *regs, int nregs, uint64_t pc,
               dwb_read_fn read, void *context, uint64_t *pcs, int max, char *err, size_t errlen);

/* Types from DWARF: sizeof(struct name), and the byte offset of a member path such as
 * "thread.sp" (through anonymous members); -1 when absent. */
long dwb_struct_size(void *handle, const char *name);
long dwb_member_offset(void *handle, const char *structname, const char *path);
/* The element count and byte size of the array member at `path`: 0, or -1 when it is not an
 * array of known bounds. */
int dwb_array_shape(void *handle, const char *structname, const char *path, long *count, long *stride);

/* Whether the file has DWARF line information. */
int dwb_has_dwarf(void *handle);
#endif
