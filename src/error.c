/*
 * error.c - error codes to text: weft_strerror() and weft_err_name().
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

const char *weft_strerror(int err)
{
    if (err < 0)
        err = -err;
    if (err == 0)
        return "Success";
    /* strerror() may use a static buffer for unknown codes; every code
     * weft returns is known to glibc, so this is fine in practice (and
     * glibc 2.32 and later keep that buffer per thread). */
    return strerror(err); /* NOLINT(concurrency-mt-unsafe): see above */
}

#define E(x) { x, #x }
static const struct {
    int code;
    const char *name;
} names[] = {
    E(EPERM), E(ENOENT), E(ESRCH), E(EINTR), E(EIO), E(ENXIO), E(E2BIG),
    E(EBADF), E(EAGAIN), E(ENOMEM), E(EACCES), E(EFAULT), E(EBUSY),
    E(EEXIST), E(ENODEV), E(ENOTDIR), E(EISDIR), E(EINVAL), E(ENFILE),
    E(EMFILE), E(ENOSPC), E(ESPIPE), E(EPIPE), E(ERANGE), E(EDEADLK),
    E(ENAMETOOLONG), E(ENOSYS), E(ENOTEMPTY), E(ELOOP), E(ENODATA),
    E(ETIME), E(EOVERFLOW), E(ENOTSOCK), E(EDESTADDRREQ), E(EMSGSIZE),
    E(EPROTOTYPE), E(ENOPROTOOPT), E(EPROTONOSUPPORT), E(EOPNOTSUPP),
    E(EAFNOSUPPORT), E(EADDRINUSE), E(EADDRNOTAVAIL), E(ENETDOWN),
    E(ENETUNREACH), E(ECONNABORTED), E(ECONNRESET), E(ENOBUFS),
    E(EISCONN), E(ENOTCONN), E(ESHUTDOWN), E(ETIMEDOUT), E(ECONNREFUSED),
    E(EHOSTUNREACH), E(EALREADY), E(EINPROGRESS), E(ECANCELED),
    E(EOWNERDEAD), E(ENOTRECOVERABLE),
};
#undef E

const char *weft_err_name(int err)
{
    if (err < 0)
        err = -err;
    if (err == 0)
        return "OK";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].code == err)
            return names[i].name;
    return "UNKNOWN";
}
