/*
 * list.h - intrusive circular doubly-linked list (no allocation).
 *
 * A list head is a struct weft__list whose next/prev point to itself when
 * empty.  An element embeds a struct weft__list and is found back with
 * weft__container_of().  An unlinked element has next == prev == itself
 * (weft__list_init), so weft__list_remove() on it is a harmless no-op.
 */
#ifndef WEFT_LIST_H
#define WEFT_LIST_H

#include <stddef.h>

struct weft__list {
    struct weft__list *next;
    struct weft__list *prev;
};

#define weft__container_of(ptr, type, field) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, field)))

static inline void weft__list_init(struct weft__list *l)
{
    l->next = l;
    l->prev = l;
}

static inline int weft__list_empty(const struct weft__list *l)
{
    return l->next == l;
}

/* Insert n just before pos (at the tail when pos is the head). */
static inline void weft__list_insert_before(struct weft__list *pos,
                                            struct weft__list *n)
{
    n->prev = pos->prev;
    n->next = pos;
    pos->prev->next = n;
    pos->prev = n;
}

static inline void weft__list_push_back(struct weft__list *h,
                                        struct weft__list *n)
{
    weft__list_insert_before(h, n);
}

static inline void weft__list_push_front(struct weft__list *h,
                                         struct weft__list *n)
{
    weft__list_insert_before(h->next, n);
}

/* Unlink n and leave it self-linked, so a second remove is a no-op. */
static inline void weft__list_remove(struct weft__list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n;
    n->prev = n;
}

static inline struct weft__list *weft__list_pop_front(struct weft__list *h)
{
    struct weft__list *n = h->next;
    if (n == h)
        return NULL;
    weft__list_remove(n);
    return n;
}

/* Move every element of src to the tail of dst; src becomes empty. */
static inline void weft__list_splice_back(struct weft__list *dst,
                                          struct weft__list *src)
{
    if (weft__list_empty(src))
        return;
    src->next->prev = dst->prev;
    dst->prev->next = src->next;
    src->prev->next = dst;
    dst->prev = src->prev;
    weft__list_init(src);
}

#endif /* WEFT_LIST_H */
