"""Bounded memories of text already found valid.

Clients repeat the same request lines and header lines, and apps the same
statuses and headers, so a dict hit can replace the checks. Only the exact text
is remembered, and only once the checks accepted it: a hit says what the checks
would say of the same text again. Each memory keeps at most MAX entries of
short text, and starts over when full, so an adversary costs it no more than a
miss each.

Behind a load balancer or a service mesh, some lines are new with every
request (X-Request-Id, traceparent, a session cookie being set). A text is
therefore kept only when it is seen a second time: a line that never repeats
passes through a small set of texts seen once and never pushes out the lines
that do repeat (Host, User-Agent, Accept...), which stay known.
"""
MAX = 1024
TEXT_MAX = 256  # longer text is not kept: hashing it would cost about as much as checking it


class Memory(dict):
    """A memory of text found valid: a dict (lookups are plain ``get``), with the texts seen once."""

    __slots__ = ("seen_once",)

    def __init__(self):
        super().__init__()
        self.seen_once = set()


def remember(memory, key, value, size):
    """Keep ``key -> value`` when the text it stands for is ``size`` characters or fewer, and was
    seen before (a plain dict keeps it at once)."""
    if size <= TEXT_MAX:
        seen_once = getattr(memory, "seen_once", None)
        if seen_once is not None and key not in seen_once:
            if len(seen_once) >= MAX:
                seen_once.clear()
            seen_once.add(key)
            return
        if len(memory) >= MAX:
            memory.clear()
        memory[key] = value
