#ifndef WEFT_CPCRE2_SHIM_H
#define WEFT_CPCRE2_SHIM_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* PCRE2_ZERO_TERMINATED and PCRE2_UNSET are ~(size_t)0, which Swift cannot import as a constant. */
static inline size_t weft_pcre2_unset(void) { return PCRE2_UNSET; }

#endif
