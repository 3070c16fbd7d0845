"""The float32 contract between the C scalar path (0-d float tensors) and the numpy array path,
as stated in README.md ("Semantics in brief") and dualad/_scalar.pxd:

- the scalar path computes on C doubles and rounds the result to float32 once: its value is
  libm's double result rounded to float32 (bit for bit, checked against Python's math module);
- the array path runs numpy's float32 loops, which round differently: the two differ by at
  most FLOAT32_ULP_BOUND ulps per op (measured, not a tolerance picked to pass), and not at
  all for the correctly rounded arithmetic ops. float64 differs too (FLOAT64_ULP_BOUND):
  some of numpy's float64 loops are its own, not libm's.

The bounds are maxima over many points; a test fails if the distance ever grows past them.
"""
import math

import numpy as np
import pytest

import dualad as dd

POINTS = 20000
RNG_SEED = 20261201

# the stated bounds (README.md): max ulp distance, scalar path vs array path, float32. The
# largest distance found over 4 million random points per op (20000 points found only 1 ulp
# for tan and log1p and 2 for log; a Hypothesis draw then hit log1p's 2 at x=0.3784...).
FLOAT32_ULP_BOUND = {"sin": 1, "cos": 1, "tanh": 1, "pow": 1, "tan": 2, "exp": 2, "log1p": 2,
                     "log": 3, "sigmoid": 3}
# float64 differs too: numpy's float64 loops are not all libm's
FLOAT64_ULP_BOUND = {"sin": 0, "cos": 0, "log": 0, "tan": 1, "log1p": 1, "pow": 1, "exp": 1,
                     "tanh": 2, "sigmoid": 2}
BITWISE_OPS = ["add", "subtract", "multiply", "divide", "negative", "square", "sqrt", "abs",
               "relu", "maximum", "minimum"]


def _c_sigmoid(a):
    # the kernel's formula in _scalar.pxd, on doubles
    if a >= 0:
        return 1.0 / (1.0 + math.exp(-a))
    z = math.exp(a)
    return z / (1.0 + z)


EXPONENT_17 = float(np.float32(1.7))
# op: (dualad function of one float32 tensor, the double computation the C kernel does,
#      sampler of float32 points in the op's domain)
UNARY = {
    "sin": (dd.sin, math.sin, lambda r, n: r.uniform(-1e4, 1e4, n)),
    "cos": (dd.cos, math.cos, lambda r, n: r.uniform(-1e4, 1e4, n)),
    "tan": (dd.tan, math.tan, lambda r, n: r.uniform(-1.5, 1.5, n)),
    "tanh": (dd.tanh, math.tanh, lambda r, n: r.uniform(-10, 10, n)),
    "exp": (dd.exp, math.exp, lambda r, n: r.uniform(-80, 80, n)),
    "log": (dd.log, math.log, lambda r, n: np.exp(r.uniform(-60, 60, n))),
    "log1p": (dd.log1p, math.log1p, lambda r, n: r.uniform(-0.99, 1e3, n)),
    "sigmoid": (dd.sigmoid, _c_sigmoid, lambda r, n: r.uniform(-80, 80, n)),
    "pow": (lambda t: dd.pow(t, dd.constant(np.float32(EXPONENT_17))),
            lambda a: math.pow(a, EXPONENT_17), lambda r, n: r.uniform(0.01, 100, n)),
}


def ulp_distance(a, b, dtype=np.float32):
    """How many `dtype` values lie between a and b (0: same bits; +0.0 and -0.0 count 0)."""
    ints, sign = (np.int32, 0x7FFFFFFF) if dtype == np.float32 else (np.int64, 2**63 - 1)
    def ordered(v):
        bits = np.asarray(v, dtype).view(ints).astype(np.int64)
        return np.where(bits < 0, -(bits & sign), bits)
    return np.abs(ordered(a) - ordered(b))


# points where a wider search found the bound reached (kept so the fixed sample sees them)
KNOWN_WORST = {"log1p": [0.3784010665464804]}


def _points(name, dtype=np.float32):
    rng = np.random.default_rng([RNG_SEED, sorted(UNARY).index(name)])
    xs = np.concatenate([UNARY[name][2](rng, POINTS), KNOWN_WORST.get(name, [])])
    return xs.astype(np.float32).astype(dtype)


def _scalar_path(fn, xs):
    out = []
    for x in xs:
        t = fn(dd.constant(x))
        assert t.shape == () and t.dtype == xs.dtype
        out.append(t.numpy())
    return np.array(out, xs.dtype)


def test_the_ulp_distance_counts_float32_steps():
    one = np.float32(1)
    assert ulp_distance(one, np.nextafter(one, np.float32(2))) == 1
    assert ulp_distance(np.float32(-0.0), np.float32(0.0)) == 0
    tiny = np.float32(1e-45)
    assert ulp_distance(-tiny, tiny) == 2


@pytest.mark.parametrize("name", sorted(UNARY))
def test_scalar_path_is_the_double_result_rounded_to_float32(name):
    fn, double_fn, _ = UNARY[name]
    xs = _points(name)
    expected = np.array([np.float32(double_fn(float(x))) for x in xs], np.float32)
    scalar = _scalar_path(fn, xs)
    differ = np.flatnonzero(scalar.view(np.int32) != expected.view(np.int32))
    assert differ.size == 0, f"{name}: {differ.size} points, first x={xs[differ[0]]!r}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(UNARY))
def test_scalar_and_array_paths_within_the_stated_ulps(name, dtype):
    fn = UNARY[name][0]
    if name == "pow":  # the exponent's dtype follows the base's
        fn = lambda t: dd.pow(t, dd.constant(dtype(EXPONENT_17)))  # noqa: E731
    xs = _points(name, dtype)
    scalar = _scalar_path(fn, xs)
    array = np.asarray(fn(dd.constant(xs)))
    assert array.dtype == dtype
    distance = ulp_distance(scalar, array, dtype)
    worst = int(distance.argmax())
    bound = (FLOAT32_ULP_BOUND if dtype == np.float32 else FLOAT64_ULP_BOUND)[name]
    assert distance.max() <= bound, (
        f"{name}: {int(distance.max())} ulps at x={xs[worst]!r} (scalar {scalar[worst]!r}, "
        f"array {array[worst]!r}), {np.count_nonzero(distance)} of {POINTS} points differ")


@pytest.mark.parametrize("name", BITWISE_OPS)
def test_arithmetic_ops_agree_bit_for_bit(name):
    rng = np.random.default_rng([RNG_SEED, 99])
    a = rng.normal(scale=100, size=POINTS).astype(np.float32)
    b = rng.normal(scale=100, size=POINTS).astype(np.float32)
    if name == "sqrt":
        a = np.abs(a)
    fn = getattr(dd, name)
    binary = name in ("add", "subtract", "multiply", "divide", "maximum", "minimum")
    args = (a, b) if binary else (a,)
    array = np.asarray(fn(*[dd.constant(v) for v in args]))
    scalar = np.array([np.float32(fn(*[dd.constant(np.float32(v[i])) for v in args]).numpy())
                       for i in range(POINTS)], np.float32)
    assert array.dtype == np.float32
    differ = np.flatnonzero(scalar.view(np.int32) != array.view(np.int32))
    assert differ.size == 0, f"{name}: {differ.size} points differ"
