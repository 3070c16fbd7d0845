"""Nested structures (lists, tuples, dicts of tensors) as flat lists and back."""


def flatten(structure):
    """Leaves of `structure` in a fixed order (dicts by sorted key), and a function that
    rebuilds the same structure from a list of new leaves."""
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
        new_leaves = list(new_leaves)
        if len(new_leaves) != len(leaves):
            raise ValueError(f"expected {len(leaves)} values to rebuild the structure, "
                             f"got {len(new_leaves)}")
        return builder(iter(new_leaves))

    return leaves, pack
