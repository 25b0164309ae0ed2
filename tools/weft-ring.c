/*
 * weft-ring - ring the named doorbell of a weft doorbell loop.
 *
 *     weft-ring [-q] PATH...
 *
 * Sends one ring to each PATH, a named doorbell bound with
 * weft_doorbell_bind() (a Unix datagram socket), as
 * weft_doorbell_ring_path() does.  Typical use, from a shell script that
 * has just committed work for the loop:
 *
 *     sqlite3 work.db "INSERT INTO jobs(body) VALUES ('build')" &&
 *         weft-ring /run/myapp/doorbell
 *
 * Exit status: 0 when every ring was sent, 1 when one failed (nothing
 * listening at the path, no permission ...), 2 for a usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "weft.h"

static void usage(FILE *to)
{
    fputs("usage: weft-ring [-q] PATH...\n"
          "Ring the named doorbell of a weft doorbell loop at each PATH.\n"
          "  -q          print nothing on failure (the exit status tells)\n"
          "  -h, --help  show this help\n"
          "  --version   show the weft version\n"
          "Exit status: 0 rung, 1 a ring failed, 2 usage error.\n",
          to);
}

int main(int argc, char **argv)
{
    int quiet = 0, i = 1, status = 0;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--version") == 0) {
            printf("weft-ring (weft %s)\n", weft_version());
            return 0;
        }
        if (strcmp(a, "-q") == 0) {
            quiet = 1;
            continue;
        }
        if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "weft-ring: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        break;
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    for (; i < argc; i++) {
        int r = weft_doorbell_ring_path(argv[i]);
        if (r < 0) {
            status = 1;
            if (!quiet)
                fprintf(stderr, "weft-ring: %s: %s%s\n", argv[i],
                        weft_strerror(r),
                        r == -ECONNREFUSED
                            ? " (nothing listening: a stale path?)"
                            : "");
        }
    }
    return status;
}
