/* Install smoke test: a program built against an installed weft. */
#include <stdio.h>
#include <string.h>
#include <weft.h>

#define STR_(x) #x
#define STR(x) STR_(x)

int main(void)
{
    const char *want = STR(WEFT_VERSION_MAJOR) "." STR(WEFT_VERSION_MINOR)
        "." STR(WEFT_VERSION_PATCH);
    printf("weft %s (header %s)\n", weft_version(), want);
    return strcmp(weft_version(), want) == 0 ? 0 : 1;
}
