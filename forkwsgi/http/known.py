"""Bounded memories of text already found valid.

Clients repeat the same request lines and header lines, and apps the same
statuses and headers, so a dict hit can replace the checks. Only the exact text
is remembered, and only once the checks accepted it: a hit says what the checks
would say of the same text again. Each memory keeps at most MAX entries of
short text, and starts over when full (text that comes and goes, such as ids
and cookies, filled it), so an adversary costs it no more than a miss each.
"""
MAX = 1024
TEXT_MAX = 256  # longer text is not kept: hashing it would cost about as much as checking it


def remember(memory, key, value, size):
    """Keep ``key -> value`` when the text it stands for is ``size`` characters or fewer."""
    if size <= TEXT_MAX:
        if len(memory) >= MAX:
            memory.clear()
        memory[key] = value
