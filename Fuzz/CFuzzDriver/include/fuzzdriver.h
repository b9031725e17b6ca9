/* libFuzzer's entry for programs with a main of their own (SwiftPM renames an executable
 * target's main, so libFuzzer's main cannot be used). The symbol is weak: a normal build
 * has no libFuzzer, and xf_run_driver then says so instead of failing to link. */
#ifndef FUZZDRIVER_H
#define FUZZDRIVER_H
#include <stddef.h>
#include <stdint.h>

typedef int (*xf_callback)(const uint8_t *data, size_t size);
/* Runs libFuzzer with argv; -1 when this binary was built without it. */
int xf_run_driver(int *argc, char ***argv, xf_callback callback);
#endif
