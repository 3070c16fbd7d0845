"""Large arrays: the sweep sums cotangents in buffers it owns (the first cotangent of a slot
included, when nothing else can see it), and the parallel kernels (multiply, the sweep's
a += b) give numpy's bits at every thread count, from any number of Python threads."""
import threading

import numpy as np
import pytest

import dualad as dd
from dualad import _core
from isolated import assert_runs_cleanly, run_isolated

THRESHOLD = _core._kernel_size_threshold()
# "1k": one thread through the kernels (numpy runs the work at one thread otherwise)
THREAD_COUNTS = [1, "1k", 2, 3] if _core.has_openmp() else [1, "1k"]


@pytest.fixture
def threads():
    """Sets the thread count (an int, or "1k"), restoring the defaults after the test."""
    previous = dd.get_num_threads()

    def set_count(count):
        _core._run_kernels_at_one_thread(count == "1k")
        dd.set_num_threads(1 if count == "1k" else count)

    yield set_count
    _core._run_kernels_at_one_thread(False)
    dd.set_num_threads(previous)


def same_bits(got, expected):
    got, expected = np.asarray(got), np.asarray(expected)
    return (got.dtype == expected.dtype and got.shape == expected.shape
            and got.tobytes() == expected.tobytes())


def hostile_values(n, dtype, seed):
    """Normal values with a sprinkling of inf, -inf, nan, huge values (overflow) and -0.0."""
    x = np.random.default_rng(seed).normal(size=n).astype(dtype)
    x[::97] = np.inf
    x[5::101] = -np.inf
    x[7::103] = np.nan
    x[9::89] = np.finfo(dtype).max
    x[11::83] = -0.0
    return x


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [THRESHOLD - 1, THRESHOLD, THRESHOLD + 7, 1_000_003])
def test_multiply_kernel_gives_numpys_bits(threads, dtype, n):
    a, b = hostile_values(n, dtype, 1), hostile_values(n, dtype, 2)
    single = np.array([[1.5]], dtype=dtype)
    col = a.reshape(n, 1)
    # (the core calls its impls with floating-point errors ignored, as here)
    with np.errstate(all="ignore"):
        check_multiply_at_each_count(threads, a, b, single, col, dtype)


def check_multiply_at_each_count(threads, a, b, single, col, dtype):
    for count in THREAD_COUNTS:
        threads(count)
        assert same_bits(_core._multiply_impl(a, b), np.multiply(a, b))
        # one element broadcast over a large array, either side (the matmul VJP's outer products)
        assert same_bits(_core._multiply_impl(single, col), np.multiply(single, col))
        assert same_bits(_core._multiply_impl(col, single), np.multiply(col, single))
        # a single element of more axes than the array: numpy's broadcast shape, not a's
        assert same_bits(_core._multiply_impl(a, single), np.multiply(a, single))
        # views that are not C-contiguous and mixed dtypes go to numpy, same answer
        assert same_bits(_core._multiply_impl(a[::2], b[::2]), np.multiply(a[::2], b[::2]))
        other = b.astype(np.float64 if dtype == np.float32 else np.float32)
        assert same_bits(_core._multiply_impl(a, other), np.multiply(a, other))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gradients_through_the_kernels_give_the_serial_bits(threads, dtype):
    # tanh, exp, multiply and add VJPs and the sweep's sums over 200,000 elements
    n = 200_000
    xv, yv = hostile_values(n, dtype, 3), hostile_values(n, dtype, 4)
    x, y = dd.constant(xv), dd.constant(yv)

    def gradients():
        with dd.GradientTape() as tape:
            tape.watch([x, y])
            z = dd.tanh(x) * y + dd.exp(x) * x + x * y
        return [g.numpy() for g in tape.gradient(z, [x, y])]

    threads(1)
    expected = gradients()
    with np.errstate(all="ignore"):   # d/dy: tanh(x) + x, summed as numpy sums it
        assert same_bits(expected[1], np.tanh(xv) + xv)
    for count in THREAD_COUNTS:
        threads(count)
        got = gradients()
        assert all(same_bits(g, w) for g, w in zip(got, expected))


def test_the_first_cotangent_of_a_slot_is_summed_into_in_place():
    # W2's shape: x gets a cotangent from the matmul and one through the transpose; the second
    # is added into the first, which a rule made fresh and nothing else holds (no new array)
    x = dd.constant(np.random.default_rng(0).normal(size=(1000, 1)))
    before = _core._sums_in_place()
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = 2 * dd.matmul(dd.transpose(x), x)
    g = tape.gradient(y, x)
    assert _core._sums_in_place() - before == 1
    assert same_bits(g.numpy(), 4 * x.numpy())


def _twice_through(f, x):
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = dd.reduce_sum(f(x) + f(x))
    return tape.gradient(y, x)


def test_a_cotangent_a_custom_gradient_keeps_is_never_written_into():
    kept = []

    @dd.custom_gradient
    def f(x):
        def grad(dy):
            g = dy * 3.0
            kept.append((g, g.numpy().copy()))   # the rule keeps what it returns
            return g
        return x * 1.0, grad

    x = dd.constant(np.arange(6.0))
    g = _twice_through(f, x)
    assert np.array_equal(g.numpy(), np.full(6, 6.0))
    for held, value_then in kept:
        assert np.array_equal(held.numpy(), value_then)


def test_a_cotangent_sharing_the_callers_array_is_never_written_into():
    arr = np.full(6, 3.0)

    @dd.custom_gradient
    def f(x):
        return x * 1.0, lambda dy: dd.constant(arr)

    x = dd.constant(np.arange(6.0))
    g = _twice_through(f, x)
    assert np.array_equal(g.numpy(), np.full(6, 6.0))
    assert np.array_equal(arr, np.full(6, 3.0))


def test_set_num_threads_checks_its_argument_and_returns_the_previous_count(threads):
    for bad in (True, 2.0, "2", None):
        with pytest.raises(TypeError, match="positive int"):
            dd.set_num_threads(bad)
    for bad in (0, -1):
        with pytest.raises(ValueError, match="positive int"):
            dd.set_num_threads(bad)
    start = dd.get_num_threads()
    assert dd.set_num_threads(1) == start
    assert dd.get_num_threads() == 1
    if _core.has_openmp():
        assert dd.set_num_threads(2) == 1
        assert dd.get_num_threads() == 2
    else:
        with pytest.raises(ValueError, match="no OpenMP"):
            dd.set_num_threads(2)


def test_the_thread_count_comes_from_the_environment():
    code = "import dualad; print(dualad.get_num_threads())"
    if _core.has_openmp():
        assert assert_runs_cleanly(code, env={"DUALAD_NUM_THREADS": "3"}).stdout.strip() == "3"
        assert assert_runs_cleanly(code, env={"DUALAD_NUM_THREADS": "",
                                              "OMP_NUM_THREADS": "2,1"}).stdout.strip() == "2"
    # unset (empty): one thread, however many CPUs there are (parallelism is asked for)
    assert assert_runs_cleanly(code, env={"DUALAD_NUM_THREADS": "",
                                          "OMP_NUM_THREADS": ""}).stdout.strip() == "1"
    proc = run_isolated(code, env={"DUALAD_NUM_THREADS": "many"})
    if _core.has_openmp():
        assert proc.returncode == 1 and "DUALAD_NUM_THREADS must be a positive integer" in proc.stderr


def test_the_serial_build_builds_and_gives_the_same_bits(tmp_path):
    # without OpenMP (DUALAD_NO_OPENMP=1 stands for a compiler without -fopenmp) the kernels
    # build as serial loops and one thread is all set_num_threads accepts
    pytest.importorskip("Cython")
    import shutil
    import subprocess
    import sys
    from isolated import ROOT
    src = tmp_path / "src"
    # the generated C files come along (with their times): only the C compiler runs
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", "build", "*.so", "__pycache__", "bench", "docs", "tests", "conformance"))
    env = dict(__import__("os").environ, DUALAD_NO_OPENMP="1")
    build = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace", "-q"], cwd=src,
                           env=env, capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stderr[-3000:]
    check = subprocess.run([sys.executable, "-c", (
        "import numpy as np, dualad, dualad._core as c\n"
        "assert not c.has_openmp() and dualad.get_num_threads() == 1\n"
        "a = np.linspace(-3, 3, 300_000); b = np.cos(a)\n"
        "assert c._multiply_impl(a, b).tobytes() == np.multiply(a, b).tobytes()\n"
        "try:\n    dualad.set_num_threads(2)\nexcept ValueError as e:\n    print(e)\n")],
        cwd=src, env=env, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr[-3000:]
    assert "no OpenMP" in check.stdout


def test_python_threads_take_large_gradients_at_once(threads):
    # each thread's sweep runs the parallel kernels (the GIL released inside them) while the
    # others run theirs: every result has the serial bits
    most = 3 if _core.has_openmp() else "1k"
    n = 150_000
    inputs = [dd.constant(hostile_values(n, np.float64, 10 + i)) for i in range(4)]

    def gradient(x):
        with dd.GradientTape() as tape:
            tape.watch(x)
            y = dd.tanh(x) * x + x * x
        return tape.gradient(y, x).numpy()

    threads(1)
    expected = [gradient(x) for x in inputs]
    threads(most)
    failures = []

    def worker(i):
        try:
            for _ in range(5):
                if not same_bits(gradient(inputs[i]), expected[i]):
                    failures.append(i)
        except Exception as e:   # noqa: BLE001 - reported below
            failures.append(repr(e))

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for w in workers:
        w.start()
    # the count changing under running kernels: each kernel reads it once
    for count in THREAD_COUNTS * 3:
        threads(count)
    for w in workers:
        w.join()
    assert failures == []


def test_hvp_runs_as_many_matrix_products_as_the_hand_written_one(monkeypatch):
    # H·v of sum(tanh(A·x)) by hand: A·x, A·v, Aᵀ·(...): three passes over A. Forward over
    # reverse also computed the gradient Aᵀ·(1 - t²), which H·v does not need (a fourth).
    rng = np.random.default_rng(5)
    # X and V of 200 columns: products with more than _core._matmul_impl's 4096 entries go through
    # np.matmul (smaller ones through ndarray.dot, which cannot be counted here)
    a, x, v = (dd.constant(t) for t in (rng.normal(size=(30, 30)), rng.normal(size=(30, 200)),
                                        rng.normal(size=(30, 200))))
    products = []
    matmul = np.matmul

    def counted(*args, **kwargs):
        products.append(args[0].shape)
        return matmul(*args, **kwargs)

    monkeypatch.setattr(np, "matmul", counted)
    hv = dd.hvp(lambda x: dd.reduce_sum(dd.tanh(dd.matmul(a, x))), x, v)
    monkeypatch.undo()
    assert len(products) == 3
    an, xn, vn = a.numpy(), x.numpy(), v.numpy()
    t = np.tanh(an @ xn)
    expected = an.T @ (-2 * t * (1 - t * t) * (an @ vn))
    # entries that cancel to ~1e-4 of the largest: their error is relative to the largest
    np.testing.assert_allclose(hv.numpy(), expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())
