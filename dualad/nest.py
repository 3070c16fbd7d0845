"""Nested structures (lists, tuples, dicts of tensors) as flat lists and back."""


def flatten(structure):
    """Leaves of `structure` in a fixed order (dicts by sorted key), and a function that
    rebuilds the same structure from a list of new leaves."""
    if not isinstance(structure, (list, tuple, dict)):
        return [structure], _single
    if type(structure) in (list, tuple) and not any(
            isinstance(v, (list, tuple, dict)) for v in structure):
        kind = type(structure)
        n = len(structure)  # now: the caller's list may change before pack is called
        return list(structure), lambda new: kind(_checked_leaves(new, n))
    leaves = []

    def walk(s):
        if isinstance(s, (list, tuple)):
            parts = [walk(v) for v in s]
            if isinstance(s, tuple) and hasattr(s, "_fields"):  # namedtuple
                return lambda it: type(s)(*(p(it) for p in parts))
            kind = type(s)
            return lambda it: kind(p(it) for p in parts)
        if isinstance(s, dict):
            keys = sorted(s)
            parts = [walk(s[k]) for k in keys]
            return lambda it: {k: p(it) for k, p in zip(keys, parts)}
        leaves.append(s)
        return lambda it: next(it)

    builder = walk(structure)

    def pack(new_leaves):
        return builder(iter(_checked_leaves(new_leaves, len(leaves))))

    return leaves, pack


def _single(new_leaves):
    return _checked_leaves(new_leaves, 1)[0]


def _checked_leaves(new_leaves, n):
    new_leaves = list(new_leaves)
    if len(new_leaves) != n:
        raise ValueError(f"expected {n} values to rebuild the structure, got {len(new_leaves)}")
    return new_leaves
