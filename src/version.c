/*
 * version.c - the library version at run time.
 */
#include "internal.h"

const char *weft_version(void)
{
#define STR2(x) #x
#define STR(x) STR2(x)
    return STR(WEFT_VERSION_MAJOR) "." STR(WEFT_VERSION_MINOR) "." STR(
        WEFT_VERSION_PATCH);
#undef STR
#undef STR2
}
