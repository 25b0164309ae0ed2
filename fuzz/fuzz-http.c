/*
 * fuzz-http.c - the HTTP request-head parser of examples/http_parse.h
 * against a model, and fed the way the server feeds it.
 *
 * The input is the bytes a client sent.  Each parse reads a heap copy of
 * exactly the bytes it is given, so ASan catches any read past them.
 * Checked:
 *   - the result is -1, 0, or a head length within the input and within
 *     HTTP_MAX_HEAD that ends with the first CRLF CRLF;
 *   - the method and path lie inside that head, where the request line
 *     puts them;
 *   - everything the parser reports (accept or reject, method, path,
 *     version, keep-alive, Content-Length) matches a plain model written
 *     from the grammar (RFC 9112 for the request line, fields and
 *     Content-Length; http_parse.h's own rules for what it leaves out);
 *   - incremental use, as examples/http.c does it: the input arriving in
 *     pieces gives 0 ("need more") until the head is complete, then the
 *     same answer as the whole; the bytes after a complete head (a
 *     pipelined request) change nothing.
 */
#include "fuzz.h"

#include "../examples/http_parse.h"

/* What a parse found, with the spans as offsets into the input. */
struct result {
    long r;
    size_t method, method_len, path, path_len;
    int minor, keep_alive;
    long content_length;
};

/* Parse the first n bytes of data from an exact-size heap copy. */
static struct result parse(const uint8_t *data, size_t n)
{
    char *copy = malloc(n ? n : 1);
    CHECK(copy != NULL);
    if (n)
        memcpy(copy, data, n);
    struct http_req req;
    struct result res;
    memset(&res, 0, sizeof res);
    res.r = http_parse(copy, n, &req);
    if (res.r > 0) {
        CHECK(req.method >= copy && req.method + req.method_len <= copy + res.r);
        CHECK(req.path >= copy && req.path + req.path_len <= copy + res.r);
        res.method = (size_t)(req.method - copy);
        res.method_len = req.method_len;
        res.path = (size_t)(req.path - copy);
        res.path_len = req.path_len;
        res.minor = req.minor;
        res.keep_alive = req.keep_alive;
        res.content_length = req.content_length;
    }
    free(copy);
    return res;
}

static void check_same(const struct result *a, const struct result *b)
{
    CHECK_EQ(a->r, b->r);
    if (a->r <= 0)
        return;
    CHECK_EQ(a->method, b->method);
    CHECK_EQ(a->method_len, b->method_len);
    CHECK_EQ(a->path, b->path);
    CHECK_EQ(a->path_len, b->path_len);
    CHECK_EQ(a->minor, b->minor);
    CHECK_EQ(a->keep_alive, b->keep_alive);
    CHECK_EQ(a->content_length, b->content_length);
}

/* ---------------------------------------------------------------------
 * The model
 * --------------------------------------------------------------------- */

static int is_tchar(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/* Case-insensitive: the field value, less its OWS, equals tok. */
static int value_is(const uint8_t *v, size_t n, const char *tok)
{
    while (n && ows(v[0]))
        v++, n--;
    while (n && ows(v[n - 1]))
        n--;
    if (n != strlen(tok))
        return 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = v[i];
        if (c >= 'A' && c <= 'Z')
            c = (uint8_t)(c - 'A' + 'a');
        if (c != (uint8_t)tok[i])
            return 0;
    }
    return 1;
}

/* Content-Length = 1*DIGIT, between optional whitespace.  The parser caps
 * the value: a digit that arrives when the value is over 10^8 is refused
 * (so at most 1,000,000,009).  Returns -1 when invalid. */
static long content_length(const uint8_t *v, size_t n)
{
    while (n && ows(v[0]))
        v++, n--;
    while (n && ows(v[n - 1]))
        n--;
    if (n == 0)
        return -1;
    long cl = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9' || cl > 100000000)
            return -1;
        cl = cl * 10 + (v[i] - '0');
    }
    return cl;
}

static struct result model(const uint8_t *d, size_t len)
{
    struct result m;
    memset(&m, 0, sizeof m);
    /* The head: up to the first CRLF CRLF, which must end within
     * HTTP_MAX_HEAD bytes. */
    size_t end = 0;
    for (size_t i = 0; i + 4 <= len && i + 4 <= HTTP_MAX_HEAD; i++) {
        if (!memcmp(d + i, "\r\n\r\n", 4)) {
            end = i + 4;
            break;
        }
    }
    if (!end) {
        m.r = len >= HTTP_MAX_HEAD ? -1 : 0;
        return m;
    }
    m.r = -1; /* until proven valid */
    /* Request line: tchar+ SP path SP "HTTP/1." DIGIT CRLF, where the
     * path is bytes above space. */
    size_t p = 0;
    while (p < end && is_tchar(d[p]))
        p++;
    if (p == 0 || d[p] != ' ')
        return m;
    m.method_len = p;
    m.path = ++p;
    while (d[p] > ' ')
        p++;
    m.path_len = p - m.path;
    if (m.path_len == 0 || d[p] != ' ')
        return m;
    p++;
    if (end - p < 10 || memcmp(d + p, "HTTP/1.", 7) || d[p + 7] < '0' ||
        d[p + 7] > '9' || memcmp(d + p + 8, "\r\n", 2))
        return m;
    m.minor = d[p + 7] - '0';
    m.keep_alive = m.minor >= 1;
    m.content_length = -1;
    p += 10;
    /* Fields: each line is tchar+ ":" value CRLF, the value without CR or
     * LF; until the empty line that ends the head. */
    while (p < end - 2) {
        size_t name = p;
        while (is_tchar(d[p]))
            p++;
        size_t nlen = p - name;
        if (nlen == 0 || d[p] != ':')
            return m;
        size_t v = ++p;
        while (d[p] != '\r' && d[p] != '\n')
            p++;
        if (d[p] != '\r' || d[p + 1] != '\n')
            return m;
        size_t vlen = p - v;
        p += 2;
        if (nlen == 10 && value_is(d + name, nlen, "connection")) {
            if (value_is(d + v, vlen, "close"))
                m.keep_alive = 0;
            else if (value_is(d + v, vlen, "keep-alive"))
                m.keep_alive = 1;
        } else if (nlen == 14 && value_is(d + name, nlen, "content-length")) {
            long cl = content_length(d + v, vlen);
            /* Several are allowed only when they agree (RFC 9112 6.3). */
            if (cl < 0 || (m.content_length >= 0 && m.content_length != cl))
                return m;
            m.content_length = cl;
        }
    }
    m.r = (long)end;
    return m;
}

/* ---------------------------------------------------------------------
 * The harness
 * --------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct result whole = parse(data, size);
    CHECK(whole.r >= -1);
    CHECK(whole.r <= (long)size && whole.r <= HTTP_MAX_HEAD);
    if (whole.r > 0) {
        CHECK(!memcmp(data + whole.r - 4, "\r\n\r\n", 4));
        CHECK_EQ(whole.method, 0);
        CHECK_EQ(whole.path, whole.method_len + 1);
        CHECK(whole.minor >= 0 && whole.minor <= 9);
        CHECK(whole.keep_alive == 0 || whole.keep_alive == 1);
        CHECK(whole.content_length >= -1);
    }
    struct result m = model(data, size);
    check_same(&whole, &m);

    /* Incremental: pieces of 1, 2, 3 ... bytes, parsed as they arrive. */
    size_t have = 0;
    for (size_t piece = 1; have < size; piece++) {
        have += piece < size - have ? piece : size - have;
        struct result part = parse(data, have);
        if (whole.r > 0 && have >= (size_t)whole.r) {
            check_same(&part, &whole); /* complete: what follows is ignored */
            break;
        }
        if (whole.r == 0 || (whole.r > 0 && have < (size_t)whole.r)) {
            CHECK_EQ(part.r, 0); /* not complete yet */
            continue;
        }
        /* Refused as a whole: refused as soon as the head or the size
         * limit is reached, "need more" before. */
        CHECK(part.r == 0 || part.r == -1);
        if (part.r == -1)
            break;
    }
    /* The head alone, without what follows it. */
    if (whole.r > 0) {
        struct result head = parse(data, (size_t)whole.r);
        check_same(&head, &whole);
    }
    CHECK_EQ(weft__test_live_allocs(), 0);
    return 0;
}
