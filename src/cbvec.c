/*
 * cbvec.c - small growable arrays of (function, argument) callbacks, safe
 * against removal during iteration (used by hooks and failure handlers).
 */
#include <string.h>

#include "internal.h"

int weft__cbvec_add(struct weft__cbvec *cv, void (*fn)(void), void *arg)
{
    for (uint32_t i = 0; i < cv->n; i++)
        if (cv->v[i].fn == fn && cv->v[i].arg == arg)
            return -EEXIST;
    if (cv->n == cv->cap) {
        uint32_t cap = cv->cap ? cv->cap * 2 : 4;
        struct weft__cb *v = weft__realloc(cv->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        cv->v = v;
        cv->cap = cap;
    }
    cv->v[cv->n].fn = fn;
    cv->v[cv->n].arg = arg;
    cv->n++;
    return 0;
}

static void compact(struct weft__cbvec *cv)
{
    uint32_t j = 0;
    for (uint32_t i = 0; i < cv->n; i++)
        if (cv->v[i].fn)
            cv->v[j++] = cv->v[i];
    cv->n = j;
    cv->dead = 0;
}

int weft__cbvec_remove(struct weft__cbvec *cv, void (*fn)(void), void *arg)
{
    for (uint32_t i = 0; i < cv->n; i++) {
        if (cv->v[i].fn == fn && cv->v[i].arg == arg) {
            if (cv->iterating) {
                cv->v[i].fn = NULL;
                cv->dead++;
            } else {
                memmove(&cv->v[i], &cv->v[i + 1],
                        (cv->n - i - 1) * sizeof cv->v[0]);
                cv->n--;
            }
            return 0;
        }
    }
    return -ENOENT;
}

void weft__cbvec_end_iter(struct weft__cbvec *cv)
{
    if (--cv->iterating == 0 && cv->dead)
        compact(cv);
}

void weft__cbvec_free(struct weft__cbvec *cv)
{
    weft__free(cv->v);
    cv->v = NULL;
    cv->n = cv->cap = cv->dead = 0;
}
