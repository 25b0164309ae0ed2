/*
 * http_parse.h - a small HTTP/1.x request-head parser for examples/http.c
 * (and its fuzz harness).  Header-only, no allocation: it points into the
 * caller's buffer.
 *
 * http_parse(buf, len, &req) returns the length of the request head (up to
 * and including the blank line) when a complete, valid head is in buf, 0
 * when more bytes are needed, and -1 when the head is malformed or larger
 * than HTTP_MAX_HEAD.
 */
#ifndef HTTP_PARSE_H
#define HTTP_PARSE_H

#include <stddef.h>
#include <string.h>
#include <strings.h>

#define HTTP_MAX_HEAD 8192

struct http_req {
    const char *method;
    size_t method_len;
    const char *path;
    size_t path_len;
    int minor;          /* HTTP/1.minor */
    int keep_alive;     /* what the request asks for, after the defaults */
    long content_length; /* -1: none given */
};

static inline int http_tchar(char c)
{
    /* cppcheck-suppress uninitvar ; c is one of the len bytes read into
     * the buffer: cppcheck misses that http.c parses no more than those */
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Case-insensitive compare of a header value against a token. */
static inline int http_value_is(const char *v, size_t n, const char *tok)
{
    size_t t = strlen(tok);
    while (n && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    return n == t && strncasecmp(v, tok, t) == 0;
}

static inline long http_parse(const char *buf, size_t len, struct http_req *r)
{
    const char *end = NULL;
    for (size_t i = 3; i < len && i < HTTP_MAX_HEAD; i++) {
        if (buf[i - 3] == '\r' && buf[i - 2] == '\n' && buf[i - 1] == '\r' &&
            buf[i] == '\n') {
            end = buf + i + 1;
            break;
        }
    }
    if (!end)
        return len >= HTTP_MAX_HEAD ? -1 : 0;
    const char *p = buf;
    memset(r, 0, sizeof *r);
    r->content_length = -1;
    /* Request line: METHOD SP PATH SP HTTP/1.x CRLF */
    r->method = p;
    while (p < end && http_tchar(*p))
        p++;
    r->method_len = (size_t)(p - r->method);
    if (!r->method_len || p >= end || *p != ' ')
        return -1;
    r->path = ++p;
    while (p < end && *p != ' ' && *p != '\r' && (unsigned char)*p > ' ')
        p++;
    r->path_len = (size_t)(p - r->path);
    if (!r->path_len || p >= end || *p != ' ')
        return -1;
    p++;
    if (end - p < 10 || memcmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' ||
        p[7] > '9' || p[8] != '\r' || p[9] != '\n')
        return -1;
    r->minor = p[7] - '0';
    r->keep_alive = r->minor >= 1;
    p += 10;
    /* Header fields until the blank line. */
    while (p < end && !(p[0] == '\r' && p[1] == '\n')) {
        const char *name = p;
        while (p < end && http_tchar(*p))
            p++;
        size_t nlen = (size_t)(p - name);
        if (!nlen || p >= end || *p != ':')
            return -1;
        const char *v = ++p;
        while (p < end && *p != '\r')
            if (*p++ == '\n')
                return -1; /* a bare LF */
        if (p + 1 >= end || p[1] != '\n')
            return -1;
        size_t vlen = (size_t)(p - v);
        p += 2;
        if (nlen == 10 && !strncasecmp(name, "connection", 10)) {
            if (http_value_is(v, vlen, "close"))
                r->keep_alive = 0;
            else if (http_value_is(v, vlen, "keep-alive"))
                r->keep_alive = 1;
        } else if (nlen == 14 && !strncasecmp(name, "content-length", 14)) {
            /* 1*DIGIT between optional whitespace, and several fields
             * must agree (RFC 9112 6.3): "0 5", or 0 then 5, would frame
             * the body differently from a proxy in front of us. */
            long cl = 0;
            size_t i = 0;
            while (i < vlen && (v[i] == ' ' || v[i] == '\t'))
                i++;
            while (vlen > i && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                vlen--;
            if (i == vlen)
                return -1;
            for (; i < vlen; i++) {
                if (v[i] < '0' || v[i] > '9' || cl > 100000000)
                    return -1;
                cl = cl * 10 + (v[i] - '0');
            }
            if (r->content_length >= 0 && r->content_length != cl)
                return -1;
            r->content_length = cl;
        }
    }
    return (long)(end - buf);
}

#endif /* HTTP_PARSE_H */
