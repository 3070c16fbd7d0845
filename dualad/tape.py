"""GradientTape (reverse mode) and ForwardAccumulator (forward mode): the public policy around
the compiled record and sweep of dualad._core."""
import contextlib
import enum
import inspect
import warnings

import numpy as np

from . import _core, ops
from ._core import Tensor
from .nest import flatten


class GradientInContextWarning(UserWarning):
    """gradient() was called inside the context of the persistent tape it differentiates."""


class NonFloatWatchWarning(UserWarning):
    """An integer or bool tensor was watched: it cannot have a gradient."""


class UnconnectedGradients(str, enum.Enum):
    """What a gradient, Jacobian or jvp gives for a source the target does not depend on:
    None (NONE) or zeros shaped like the source (ZERO). A member equals its string ('none',
    'zero'), so either is accepted wherever the other is."""
    NONE = "none"
    ZERO = "zero"

    def __str__(self):
        return self.value


class NonFloatTargetWarning(UserWarning):
    """gradient() was asked to differentiate an integer or bool target: it has no gradient, so
    every source gets None (as in TensorFlow, which warns and returns None)."""


class WatchError(TypeError, ValueError):
    """tape.watch() was given something that is not a Tensor or Variable: a ValueError as in
    TensorFlow, and a TypeError as dualad raised before."""


# re-entering an active tape: ValueError (TensorFlow) and RuntimeError (dualad before)
AlreadyActiveError = _core.AlreadyActiveError


def _unconnected_mode(value):
    """'none' or 'zero' from the strings, UnconnectedGradients, or an enum of the same values
    (TensorFlow's own); anything else is an error."""
    if isinstance(value, str) and (value == "none" or value == "zero"):
        return "none" if value == "none" else "zero"
    mode = getattr(value, "value", None)      # another library's enum of the same values
    if isinstance(mode, str) and (mode == "none" or mode == "zero"):
        return "none" if mode == "none" else "zero"
    raise ValueError(f"unconnected_gradients must be 'none' or 'zero' (or "
                     f"UnconnectedGradients.NONE / .ZERO), got {value!r:.60}")


_is_float = _core.is_float


def _check_sources(sources, what):
    for s in sources:
        if not isinstance(s, Tensor):
            raise TypeError(f"{what}: sources must be Tensors or Variables, got "
                            f"{type(s).__name__} ({s!r:.60})")


def _warn_non_float_target(what, target):
    # as gradient() does (TensorFlow's behaviour); stacklevel 3 is the caller of jacobian()
    warnings.warn(f"GradientTape.{what}: the target has dtype {target.dtype.name}; only float "
                  "targets can be differentiated, so it gives no Jacobian (cast it to a float "
                  "dtype)", NonFloatTargetWarning, stacklevel=3)


class GradientTape(_core.Tape):
    """Records operations on watched tensors for reverse-mode differentiation.

    `persistent=True` allows several gradient() calls; otherwise the record is released by the
    first one. Trainable Variables read inside the context are watched automatically unless
    `watch_accessed_variables=False`. Tapes nest: a gradient computed inside an outer tape's
    context is recorded by it, which gives higher derivatives. Tapes are per thread."""

    # The common path (with-block entry and exit, watch, watched_variables, gradient of one
    # target with default options, the release of a non-persistent tape) lives in the compiled
    # _core.Tape; the methods here are the general cases it hands over.

    # __init__(persistent=False, watch_accessed_variables=True) is _core.Tape's, in C
    __signature__ = inspect.Signature([
        inspect.Parameter("persistent", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=False),
        inspect.Parameter("watch_accessed_variables", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                          default=True)])

    # ---- watching ---------------------------------------------------------------------------

    def _watch_general(self, tensor):
        # watch() of anything but one float Tensor; stacklevel=2 is watch()'s caller
        leaves, _ = flatten(tensor)
        for t in leaves:
            if not isinstance(t, Tensor):
                raise WatchError(f"GradientTape.watch: expected Tensors or Variables, got "
                                 f"{type(t).__name__}; convert it with dualad.constant first")
            if not _is_float(t):
                warnings.warn(f"GradientTape.watch: a {t.dtype.name} tensor cannot have a gradient; "
                              "its gradient will be None (cast it to a float dtype)",
                              NonFloatWatchWarning, stacklevel=2)
                continue
            self._watch_tensor(t)

    @contextlib.contextmanager
    def stop_recording(self):
        """Operations in this block are not recorded by this tape."""
        if not self.active:
            raise RuntimeError("stop_recording() needs the tape to be active (inside its with block)")
        was = self.recording
        self.recording = False
        try:
            yield
        finally:
            self.recording = was

    def reset(self):
        """Forget everything recorded and watched so far; the tape keeps recording if active."""
        self._release()
        self._reopen()
        self._used = False

    # ---- gradients --------------------------------------------------------------------------

    def _begin_use(self, what, stacklevel=3):
        # stacklevel: the user's call of gradient/jacobian
        if self._used:
            raise RuntimeError(f"a non-persistent GradientTape can only be used to compute one "
                               f"set of gradients (or Jacobians), and this one already has "
                               f"(GradientTape.{what} was called a second time). Use "
                               f"GradientTape(persistent=True) to call it several times.")
        if self.active:
            if self.persistent:
                warnings.warn("GradientTape.gradient was called inside the context of its own "
                              "persistent tape: the gradient computation is recorded too, which "
                              "costs time and memory. Call it outside the with block unless you "
                              "want higher-order derivatives.", GradientInContextWarning,
                              stacklevel=stacklevel)
            else:
                self.recording = False  # as in TensorFlow: the tape stops recording
        if not self.persistent:
            self._used = True   # a grad_fn asking this tape again mid-sweep gets the error above
        try:
            # after _used is set, so that the thread recording on it cannot enter it meanwhile
            self._refuse_other_thread(what)
        except BaseException:
            self._used = False
            raise

    def _gradient_general(self, target, sources, output_gradients, unconnected_gradients):
        # gradient() beyond its compiled fast path; stacklevel=2 is gradient()'s caller
        mode = _unconnected_mode(unconnected_gradients)
        flat_sources, pack = flatten(sources)
        _check_sources(flat_sources, "GradientTape.gradient")
        targets, _ = flatten(target)
        for t in targets:
            if not isinstance(t, Tensor):
                raise TypeError(f"GradientTape.gradient: the target must be a Tensor, got "
                                f"{type(t).__name__}")
        seeds = self._seeds(targets, output_gradients)
        self._begin_use("gradient")
        try:
            for t in targets:
                if not _is_float(t):
                    # TensorFlow's behaviour: no gradient flows from it (ops with a non-float
                    # output are never recorded, so the sweep finds nothing to follow)
                    warnings.warn(f"GradientTape.gradient: the target has dtype {t.dtype.name}; "
                                  "only float targets can be differentiated, so it contributes "
                                  "no gradient (cast it to a float dtype)", NonFloatTargetWarning,
                                  stacklevel=2)
            grads = self._sweep(targets, seeds, flat_sources)
        except BaseException:
            self._abandon_use()
            raise
        self._end_use()
        return pack(self._finish(grads, flat_sources, mode))

    @staticmethod
    def _seeds(targets, output_gradients):
        if output_gradients is None:
            return [ops.ones_like(t) for t in targets]
        seeds, _ = flatten(output_gradients)
        if len(seeds) != len(targets):
            raise ValueError(f"output_gradients has {len(seeds)} tensors for {len(targets)} targets")
        out = []
        for t, s in zip(targets, seeds):
            if s is None:
                out.append(ops.ones_like(t))
                continue
            s = _core.like(s, t, "output_gradients")
            if isinstance(s, _core.Variable):
                # its value now: the Variable itself could come back as a gradient, which a
                # later assign (an optimizer step) would change under the caller
                s = s.read_value()
            if s.shape != t.shape:
                raise ValueError(f"output_gradients: shape {s.shape} does not match the target "
                                 f"shape {t.shape}")
            if s.dtype != t.dtype:
                raise TypeError(f"output_gradients: dtype {s.dtype.name} does not match the "
                                f"target dtype {t.dtype.name}")
            out.append(s)
        return out

    @staticmethod
    def _finish(grads, sources, mode):
        out = []
        for g, s in zip(grads, sources):
            if not _is_float(s):
                g = None
            if g is None and mode == "zero" and _is_float(s):
                g = ops.zeros_like(s)
            out.append(g)
        return out

    def jacobian(self, target, sources, unconnected_gradients="none",
                 parallel_iterations=None, experimental_use_pfor=True):
        """d target[i...] / d source[j...], shaped target.shape + source.shape per source.

        The rows come from batched sweeps (one sweep carries many rows' cotangents); a record
        holding a primitive whose VJP cannot take a batch (a custom gradient, a user's
        primitive) is swept once per row instead."""
        mode = _unconnected_mode(unconnected_gradients)
        flat_sources, pack = flatten(sources)
        _check_sources(flat_sources, "GradientTape.jacobian")
        target = _core.convert_to_tensor(target)
        float_target = _is_float(target)
        if not float_target:
            _warn_non_float_target("jacobian", target)
        n = target.size

        def seed_rows(lo, hi):
            # rows lo..hi-1 of the identity over the target's elements (never all n x n)
            seed = np.zeros((hi - lo) * n, dtype=target.dtype.np)
            seed[lo::n + 1] = 1     # element (i, lo + i) of the (hi - lo, n) rows, flattened
            return seed.reshape((hi - lo,) + target.shape)

        self._begin_use("jacobian")
        try:
            # an int/bool target has no recorded float path to follow: nothing to sweep
            grads = (self._sweep_rows([target], flat_sources, n, seed_rows) if float_target
                     else [None] * len(flat_sources))
        except BaseException:
            self._abandon_use()
            raise
        self._end_use()
        out = []
        for g, s in zip(grads, flat_sources):
            if not _is_float(s) or (g is None and mode == "none"):
                out.append(None)
            elif g is None:
                out.append(ops.zeros(target.shape + s.shape, s.dtype))
            else:
                shape = target.shape + s.shape
                out.append(g if g.shape == shape else ops.reshape(g, shape))
        return pack(out)

    # a batched sweep holds about (rows in the batch) x (largest recorded value) elements per
    # live cotangent: rows are taken in chunks that keep that near this many elements
    _BATCH_ELEMENTS = 1 << 22

    def _sweep_rows(self, targets, sources, n_rows, seed_rows):
        """The gradients of `sources` for rows 0..n_rows-1 of seeds, each shaped (n_rows,) +
        source.shape (None where unconnected). `seed_rows(lo, hi)` gives the numpy seed of
        rows lo..hi-1, shaped (hi - lo,) + target.shape."""
        chunk = max(1, self._BATCH_ELEMENTS // max(1, _core._largest_recorded_size(self)))
        parts = []      # (rows in the chunk, the chunk's gradients)
        lo = 0
        while True:
            hi = min(n_rows, lo + chunk)
            grads = self._sweep(targets, [_core.wrap(seed_rows(lo, hi))], sources, hi - lo)
            if grads is None:   # not batchable: one plain sweep per row
                return self._sweep_each_row(targets, sources, n_rows, seed_rows)
            parts.append((hi - lo, grads))
            lo = hi
            if lo >= n_rows:
                break
        if len(parts) == 1:
            return parts[0][1]
        out = []
        for k, s in enumerate(sources):
            column = [grads[k] for _, grads in parts]
            if all(g is None for g in column):
                out.append(None)
                continue
            out.append(ops.concat([ops.zeros((rows,) + s.shape, s.dtype) if g is None else g
                                   for (rows, _), g in zip(parts, column)], axis=0))
        return out

    def _sweep_each_row(self, targets, sources, n_rows, seed_rows):
        rows = [self._sweep(targets, [_core.wrap(seed_rows(i, i + 1)[0])], sources)
                for i in range(n_rows)]
        out = []
        for k, s in enumerate(sources):
            column = [row[k] for row in rows]
            if n_rows and all(g is None for g in column):
                out.append(None)
                continue
            # no rows: no sweep told whether s is connected; an empty Jacobian either way
            column = [ops.zeros_like(s) if g is None else g for g in column]
            out.append(ops.stack(column) if column else ops.zeros((0,) + s.shape, s.dtype))
        return out

    def batch_jacobian(self, target, source, unconnected_gradients="none",
                       parallel_iterations=None, experimental_use_pfor=True):
        """Per-example Jacobians: target (b, ...) and source (b, ...) give (b, t..., s...),
        assuming example i of the target depends only on example i of the source."""
        mode = _unconnected_mode(unconnected_gradients)
        _check_sources([source], "GradientTape.batch_jacobian")
        target = _core.convert_to_tensor(target)
        for what, t in (("target", target), ("source", source)):
            if t.ndim < 2:
                raise ValueError(f"batch_jacobian: the {what} must have rank >= 2 (a batch axis "
                                 f"and the example's axes), got rank {t.ndim} (shape {t.shape})")
        if target.shape[0] != source.shape[0]:
            raise ValueError(f"batch_jacobian: the target and the source need the same batch "
                             f"(first) dimension, got {target.shape[0]} (target shape "
                             f"{target.shape}) and {source.shape[0]} (source shape "
                             f"{source.shape})")
        batch, inner = target.shape[0], target.shape[1:]
        n_inner = int(np.prod(inner))
        out_shape = (batch,) + inner + source.shape[1:]

        def seed_rows(lo, hi):
            # row j seeds element j of every example: shape (hi - lo, batch, n_inner)
            seed = np.zeros((hi - lo, batch, n_inner), dtype=target.dtype.np)
            seed[np.arange(hi - lo), :, np.arange(lo, hi)] = 1
            return seed.reshape((hi - lo,) + target.shape)

        float_target = _is_float(target)
        if not float_target:
            _warn_non_float_target("batch_jacobian", target)
        self._begin_use("batch_jacobian")
        try:
            g = (self._sweep_rows([target], [source], n_inner, seed_rows)[0] if float_target
                 else None)
        except BaseException:
            self._abandon_use()
            raise
        self._end_use()
        if not _is_float(source) or (g is None and mode == "none"):
            return None
        if g is None:
            return ops.zeros(out_shape, source.dtype)
        # (n_inner, batch, source inner...) -> (batch, n_inner, source inner...)
        g = ops.transpose(g, (1, 0) + tuple(range(2, g.ndim)))
        return ops.reshape(g, out_shape)


class ForwardAccumulator(_core.Accumulator):
    """Forward-mode differentiation: ops run inside the context carry tangents (dual numbers)
    from `primals` along `tangents`; acc.jvp(y) is the directional derivative of y.

    Accumulators nest with each other and with tapes in any order: an accumulator outside a
    tape sees that tape's gradient computation (forward-over-reverse), a tape outside an
    accumulator records its tangent computation (reverse-over-forward).

    With `batched=True` each tangent carries a leading axis of k directions (shape
    (k,) + primal shape): one pass gives k directional derivatives, e.g. a whole Jacobian."""

    def __init__(self, primals, tangents, batched=False):
        if not batched and self._watch_plain(primals, tangents):
            return      # Tensors with matching tangents, checked in C
        flat_p, _ = flatten(primals)
        flat_t, _ = flatten(tangents)
        if len(flat_p) != len(flat_t):
            raise ValueError(f"ForwardAccumulator: {len(flat_p)} primals but {len(flat_t)} tangents")
        batch_size = None
        seen = set()
        for p, t in zip(flat_p, flat_t):
            if not isinstance(p, Tensor):
                raise TypeError(f"ForwardAccumulator: primals must be Tensors or Variables, got "
                                f"{type(p).__name__}")
            if id(p) in seen:
                raise ValueError(f"ForwardAccumulator: the tensor {p!r:.80} is listed more than "
                                 "once in primals; if that is intended, pass it once with the "
                                 "sum of its tangents")
            seen.add(id(p))
            if not _is_float(p):
                warnings.warn(f"ForwardAccumulator: a {p.dtype.name} primal cannot carry a "
                              "tangent; it is ignored", NonFloatWatchWarning, stacklevel=2)
                continue
            t = _core.like(t, p, "ForwardAccumulator")
            expected = p.shape if not batched else t.shape[:1] + p.shape
            if t.shape != expected or t.dtype != p.dtype or (batched and t.ndim == 0):
                raise ValueError(f"ForwardAccumulator: tangent of shape {t.shape} and dtype "
                                 f"{t.dtype.name} does not match its primal of shape {p.shape} "
                                 f"and dtype {p.dtype.name}"
                                 + (" (with a leading batch axis)" if batched else ""))
            if batched:
                if batch_size is not None and t.shape[0] != batch_size:
                    raise ValueError(f"ForwardAccumulator: batched tangents disagree on the "
                                     f"number of directions ({batch_size} and {t.shape[0]})")
                batch_size = t.shape[0]
            self._set_tangent(p, t)

    # __enter__, __exit__ (AlreadyActiveError, a ValueError as in TensorFlow, if active) and
    # jvp's common call are the core's (Accumulator)

    def _jvp_general(self, primals, unconnected_gradients):
        mode = _unconnected_mode(unconnected_gradients)
        flat, pack = flatten(primals)
        out = []
        for p in flat:
            if not isinstance(p, Tensor):
                raise TypeError(f"ForwardAccumulator.jvp: expected Tensors, got {type(p).__name__}")
            t = self._tangent_of(p)
            if t is None and mode == "zero" and _is_float(p):
                t = ops.zeros_like(p)
            out.append(t)
        return pack(out)
