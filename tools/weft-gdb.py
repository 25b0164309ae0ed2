# weft-gdb.py - gdb commands for programs built on weft.
#
#   (gdb) source tools/weft-gdb.py
#   (gdb) weft coros [SCHED-EXPR]   list the coroutines of a scheduler
#   (gdb) weft bt [-s SCHED-EXPR] ID|NAME [BT-ARGS]
#                                   backtrace of a suspended coroutine
#
# `weft coros` prints the lines weft_dump() prints (src/dump.c): id, name,
# state, priority, stack size and what each coroutine waits on.  Without an
# argument it uses the scheduler running on the selected thread, else that
# thread's default scheduler (both read from the thread-local weft__tls).
#
# `weft bt` shows where a suspended coroutine stands: it points the
# registers of the selected thread at the coroutine's saved context (the
# frame weft__ctx_switch left on its stack, whose layout the top of
# src/ctx/x86_64.S and src/ctx/aarch64.S documents), runs `bt`, and puts the
# registers back.  For the running coroutine it is plain `bt`.  It needs a
# live process (registers of a core file cannot be written) and the
# assembly context switch (the ucontext build keeps mangled pointers).
#
# The program needs debug information for weft (-g, as every build type of
# weft's CMake has).  Nothing here calls functions in the inferior.
#
# The wait kinds mirror enum weft__wait_kind in src/internal.h; the names
# are read from the program's debug information when it has the enum, else
# taken from the list below (keep it in step).

import errno

import gdb

STATES = ["new", "ready", "running", "waiting", "done"]
PRIOS = ["high", "normal", "low", "idle"]
WAIT_KINDS = ["none", "sleep", "fd", "op", "join", "event", "mutex", "cond",
              "sem", "wg", "future", "chan_send", "chan_recv"]
OPS = {1: "read", 2: "write", 3: "readv", 4: "writev", 5: "recv", 6: "send",
       7: "accept", 8: "connect"}
IO_READ, IO_WRITE = 1, 2
NOT_IN_HEAP = 0xFFFFFFFF


def _type(name):
    try:
        return gdb.lookup_type(name)
    except gdb.error:
        return None


def _wait_kinds():
    t = _type("enum weft__wait_kind")
    if t is None:
        return WAIT_KINDS
    names = list(WAIT_KINDS)
    for f in t.fields():
        v = int(f.enumval)
        n = f.name[len("WEFT__WAIT_"):].lower() if f.name.startswith(
            "WEFT__WAIT_") else f.name
        if v >= len(names):
            names.extend(["?"] * (v + 1 - len(names)))
        names[v] = n
    return names


def _offset(struct, field):
    for f in struct.fields():
        if f.name == field:
            return f.bitpos // 8
    raise gdb.GdbError("weft: %s has no field %s" % (struct, field))


def _u64(addr):
    inf = gdb.selected_inferior()
    return int.from_bytes(bytes(inf.read_memory(addr, 8)), "little")


def _ptr(v):
    return int(v.cast(gdb.lookup_type("unsigned long")))


def _hex(p):
    return "(nil)" if p == 0 else "0x%x" % p


def _coro_type():
    t = _type("struct weft_coro")
    if t is None:
        raise gdb.GdbError("weft: no debug information for struct weft_coro "
                           "(build weft with -g)")
    return t


def _name(co):
    try:
        s = co["name"].string()
    except gdb.error:
        s = ""
    return " '%s'" % s if s else ""


def coros(sched):
    """The coroutine records of sched (a struct weft_sched *), in spawn
    order."""
    ct = _coro_type()
    off = _offset(ct, "all")
    head = sched["all"].address
    node = head["next"]
    char_p = gdb.lookup_type("char").pointer()
    seen = 0
    while _ptr(node) != _ptr(head):
        co = (node.cast(char_p) - off).cast(ct.pointer())
        yield co
        node = node["next"]
        seen += 1
        if seen > 10000000:
            raise gdb.GdbError("weft: the coroutine list does not end")


def current_sched():
    try:
        tls = gdb.parse_and_eval("weft__tls")
        s = tls["running"]
        if _ptr(s) == 0:
            s = tls["dflt"]
    except gdb.error as e:
        raise gdb.GdbError("weft: cannot read weft__tls (%s); name the "
                           "scheduler: weft coros EXPR" % e)
    if _ptr(s) == 0:
        raise gdb.GdbError("weft: no scheduler runs on this thread and it "
                           "has no default one; name it: weft coros EXPR")
    return s


def _events(ev):
    ev &= IO_READ | IO_WRITE
    if ev == IO_READ | IO_WRITE:
        return "read+write"
    return "write" if ev == IO_WRITE else "read"


def _slot_object(obj):
    return 0 if obj == 0 else _u64(obj)


def describe_wait(co, now=None):
    """What a WAITING coroutine waits on, as weft_dump() says it."""
    kinds = _wait_kinds()
    k = int(co["wait_kind"])
    kind = kinds[k] if k < len(kinds) else "?"
    obj = _ptr(co["wait_obj"])
    timed = int(co["timer"]["idx"]) != NOT_IN_HEAP
    due = int(co["timer"]["due"])
    if kind == "sleep":
        if not timed:
            return "sleeping"
        s = "sleeping until %d" % due
        if now is not None:
            s += " (in %d ns)" % max(due - now, 0)
        return s
    if kind == "fd":
        t = _type("struct fdwait")
        if obj == 0:
            s = "fd -1 for read"
        elif t is not None:
            w = gdb.Value(obj).cast(t.pointer()).dereference()
            s = "fd %d for %s" % (int(w["fd"]), _events(int(w["events"])))
        else:
            s = "fd wait %s" % _hex(obj)
    elif kind == "op":
        if obj == 0:
            s = "completion of a cancelled I/O operation"
        else:
            t = _type("struct weft__op")
            op = gdb.Value(obj).cast(t.pointer()).dereference()
            s = "I/O operation %s on fd %d" % (
                OPS.get(int(op["kind"]), "operation"), int(op["fd"]))
    elif kind == "join":
        t = gdb.Value(obj).cast(_coro_type().pointer())
        s = "joining #%d%s" % (int(t["id"]), _name(t)) if obj else "joining #0"
    elif kind == "event":
        s = "event %s" % _hex(obj)
    elif kind == "mutex":
        m = _slot_object(obj)
        s = "mutex %s" % _hex(m)
        mt = _type("struct weft_mutex")
        if m and mt is not None:
            owner = gdb.Value(m).cast(mt.pointer())["owner"]
            if _ptr(owner):
                owner = owner.cast(_coro_type().pointer())
                s += " (held by #%d%s)" % (int(owner["id"]), _name(owner))
    elif kind == "cond":
        s = "condition %s" % _hex(obj)
    elif kind == "sem":
        s = "semaphore %s" % _hex(obj)
    elif kind == "wg":
        s = "wait group %s" % _hex(obj)
    elif kind == "future":
        s = "future %s" % _hex(_slot_object(obj))
    elif kind == "chan_send":
        s = "channel %s (send)" % _hex(_slot_object(obj))
    elif kind == "chan_recv":
        s = "channel %s (receive)" % _hex(_slot_object(obj))
    else:
        s = "something unrecorded %s" % _hex(obj)
    if timed:
        s += ", until %d" % due
    return s


def _err_name(e):
    return errno.errorcode.get(-e, "UNKNOWN")


def describe(co, now=None):
    state = int(co["state"])
    prio = int(co["prio"])
    line = "#%d%s %s, prio %s, stack %d" % (
        int(co["id"]), _name(co), STATES[state] if state < len(STATES) else "?",
        PRIOS[prio] if prio < len(PRIOS) else "?", int(co["stack"]["size"]))
    if state == 0 and int(co["timer"]["idx"]) != NOT_IN_HEAP:
        line += ": starts at %d" % int(co["timer"]["due"])
    elif state == 3:
        line += ": " + describe_wait(co, now)
    elif state == 4:
        st = int(co["status"])
        line += ": status %d" % st
        if st < 0:
            line += " (%s)" % _err_name(st)
    if state != 4:
        if int(co["flags"]) & 0x02:  # WEFT__F_ENDED
            line += " [ended]"
        if int(co["pending_err"]):
            line += " [raised %s]" % _err_name(int(co["pending_err"]))
    return line


def _sched_arg(arg):
    arg = arg.strip()
    if not arg:
        return current_sched()
    s = gdb.parse_and_eval(arg)
    t = _type("struct weft_sched")
    if s.type.code != gdb.TYPE_CODE_PTR:
        s = s.address
    return s.cast(t.pointer())


def _manual_now(s):
    # A manual clock's time is a field; a monotonic one would need a call.
    try:
        if int(s["clock"]) == 1:
            return int(s["manual_now"])
    except gdb.error:
        pass
    return None


class WeftPrefix(gdb.Command):
    """Commands for weft coroutines: weft coros, weft bt."""

    def __init__(self):
        super().__init__("weft", gdb.COMMAND_DATA, gdb.COMPLETE_NONE, True)


class WeftCoros(gdb.Command):
    """List the coroutines of a scheduler.

Usage: weft coros [SCHED-EXPR]
Without an argument: the scheduler running on the selected thread, else
the thread's default scheduler.  One line per coroutine: id, name, state,
priority, stack size and what it waits on (as weft_dump() prints them)."""

    def __init__(self):
        super().__init__("weft coros", gdb.COMMAND_DATA, gdb.COMPLETE_EXPRESSION)

    def invoke(self, arg, from_tty):
        s = _sched_arg(arg)
        now = _manual_now(s)
        lines = []
        alive = 0
        for co in coros(s):
            lines.append(describe(co, now))
            alive += int(co["state"]) != 4
        gdb.write("weft: scheduler %s: coroutines %d (alive %d)\n"
                  % (_hex(_ptr(s)), len(lines), alive))
        for ln in lines:
            gdb.write("  " + ln + "\n")


def _find(s, key):
    for co in coros(s):
        if key.isdigit() and int(co["id"]) == int(key):
            return co
        if not key.isdigit() and co["name"].string() == key:
            return co
    return None


# Saved frame of weft__ctx_switch, from the saved sp: (register, offset)
# pairs, the return address' offset, and the bytes the frame takes.
FRAMES = {
    "x86_64": ([("r15", 8), ("r14", 16), ("r13", 24), ("r12", 32),
                ("rbx", 40), ("rbp", 48)], 56, 64, "rsp", "rip"),
    "aarch64": ([("x%d" % (19 + i), 8 * i) for i in range(10)] +
                [("x29", 80), ("x30", 88)], 88, 176, "sp", "pc"),
}


def _arch():
    name = gdb.selected_frame().architecture().name()
    if "x86-64" in name or "x86_64" in name:
        return "x86_64"
    if "aarch64" in name:
        return "aarch64"
    return name


class WeftBt(gdb.Command):
    """Backtrace of a coroutine.

Usage: weft bt [-s SCHED-EXPR] ID|NAME [BT-ARGS]
Shows the stack of a suspended (or never started) coroutine by pointing
the selected thread's registers at its saved context for the duration of
`bt BT-ARGS`.  For the running coroutine: plain bt.  The coroutine is
looked up in the scheduler of `weft coros` (-s names another).  Needs a
live process and weft's assembly context switch (x86-64 or aarch64)."""

    def __init__(self):
        super().__init__("weft bt", gdb.COMMAND_STACK, gdb.COMPLETE_NONE)

    def invoke(self, arg, from_tty):
        usage = "usage: weft bt [-s SCHED-EXPR] ID|NAME [BT-ARGS]"
        sched_expr = ""
        argv = arg.split(None, 1)
        if argv and argv[0] == "-s":
            rest = argv[1].split(None, 1) if len(argv) > 1 else []
            if not rest:
                raise gdb.GdbError(usage)
            sched_expr = rest[0]
            argv = rest[1].split(None, 1) if len(rest) > 1 else []
        if not argv:
            raise gdb.GdbError(usage)
        btargs = argv[1] if len(argv) > 1 else ""
        s = _sched_arg(sched_expr)
        co = _find(s, argv[0])
        if co is None:
            raise gdb.GdbError("weft: no coroutine %s in scheduler %s"
                               % (argv[0], _hex(_ptr(s))))
        gdb.write("coroutine " + describe(co, _manual_now(s)) + "\n")
        state = int(co["state"])
        if state == 4:
            gdb.write("(finished: no stack)\n")
            return
        if state == 2:
            gdb.execute("bt " + btargs)
            return
        ctx = co["ctx"]
        if "sp" not in [f.name for f in ctx.type.fields()]:
            raise gdb.GdbError("weft: this build switches with ucontext; "
                               "weft bt needs the assembly switch")
        arch = _arch()
        if arch not in FRAMES:
            raise gdb.GdbError("weft: weft bt does not know the %s frame"
                               % arch)
        regs, ret_off, size, sp_reg, pc_reg = FRAMES[arch]
        sp = _ptr(ctx["sp"])
        values = {r: _u64(sp + off) for r, off in regs}
        values[pc_reg] = _u64(sp + ret_off)
        values[sp_reg] = sp + size

        level = gdb.selected_frame().level()
        gdb.newest_frame().select()
        names = list(values)
        saved = {r: int(gdb.parse_and_eval("$" + r)) for r in names}
        try:
            try:
                for r in names:
                    gdb.execute("set $%s = %d" % (r, values[r]),
                                to_string=True)
            except gdb.error as e:
                # A core file: its registers cannot be written.
                raise gdb.GdbError("weft: weft bt needs a live process (it "
                                   "borrows the thread's registers): %s" % e)
            gdb.execute("bt " + btargs)
        finally:
            for r in names:
                try:
                    gdb.execute("set $%s = %d" % (r, saved[r]),
                                to_string=True)
                except gdb.error:
                    pass
            gdb.execute("frame %d" % level, to_string=True)


WeftPrefix()
WeftCoros()
WeftBt()
