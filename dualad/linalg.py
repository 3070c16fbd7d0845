"""TensorFlow's `tf.linalg` namespace: matrix ops under TensorFlow's names, on the last two
axes (leading axes are batch axes). Compositions of dualad's primitives."""
import numpy as np

from . import nn, ops
from ._core import as_dtype, convert_to_tensor, float_tensor as _float_tensor


def _matrix(fname, a, rank=2):
    a = convert_to_tensor(a)
    if a.ndim < rank:
        raise ValueError(f"{fname}: needs a tensor of rank >= {rank}, got shape {a.shape}")
    return a


def matrix_transpose(a, name="matrix_transpose", conjugate=False):
    """Swaps the last two axes (dualad's tensors are real: conjugation changes nothing)."""
    a = _matrix("matrix_transpose", a)
    perm = list(range(a.ndim))
    perm[-2], perm[-1] = perm[-1], perm[-2]
    return ops.transpose(a, perm=perm)


def adjoint(matrix, name=None):
    """The conjugate transpose of the last two axes (the transpose, for real tensors)."""
    return matrix_transpose(matrix)


def matmul(a, b, transpose_a=False, transpose_b=False, adjoint_a=False, adjoint_b=False,
           a_is_sparse=False, b_is_sparse=False, output_type=None, name=None):
    """dualad.matmul with TensorFlow's adjoint_a/adjoint_b (the transpose, for real tensors)."""
    if (transpose_a and adjoint_a) or (transpose_b and adjoint_b):
        raise ValueError("matmul: give transpose_x or adjoint_x, not both")
    if output_type is not None:
        raise ValueError("matmul: output_type is not supported (cast the result)")
    return ops.matmul(a, b, transpose_a=transpose_a or adjoint_a,
                      transpose_b=transpose_b or adjoint_b)


def matvec(a, b, transpose_a=False, adjoint_a=False, a_is_sparse=False, b_is_sparse=False,
           name=None):
    """The matrix (batch) a times the vector (batch) b: shape a.shape[:-1]."""
    a = _matrix("matvec", a)
    b = _matrix("matvec", b, rank=1)
    if transpose_a and adjoint_a:
        raise ValueError("matvec: give transpose_a or adjoint_a, not both")
    product = ops.matmul(a, ops.expand_dims(b, -1), transpose_a=transpose_a or adjoint_a)
    return ops.squeeze(product, axis=-1)


def diag_part(input, name="diag_part", k=0, padding_value=0, align="RIGHT_LEFT"):
    """The main diagonal of the last two axes (length min of their sizes)."""
    if k != 0:
        raise ValueError("diag_part: only the main diagonal (k=0) is supported")
    x = _matrix("diag_part", input)
    index = np.arange(min(x.shape[-2], x.shape[-1]))
    return x[..., index, index]     # picked, not masked: an inf off the diagonal stays out


def diag(diagonal, name="diag", k=0, num_rows=-1, num_cols=-1, padding_value=0,
         align="RIGHT_LEFT"):
    """A (batch of) square matrix with `diagonal` (last axis) on its diagonal, 0 elsewhere."""
    if k != 0 or num_rows != -1 or num_cols != -1:
        raise ValueError("diag: only a square matrix with the main diagonal (k=0) is supported")
    d = _matrix("diag", diagonal, rank=1)
    n = d.shape[-1]
    on_diagonal = convert_to_tensor(np.eye(n, dtype=bool))
    # where, not a product with the identity: an inf on the diagonal must not give nan off it
    return ops.where(on_diagonal, ops.expand_dims(d, -1), ops.zeros(d.shape + (n,), d.dtype))


def trace(x, name=None):
    """The sum of the main diagonal of the last two axes."""
    return ops.reduce_sum(diag_part(x), axis=-1)


# TensorFlow name -> dualad function: the one table of this namespace (a new op, one line)
_NAMES = {
    "matmul": matmul,
    "matvec": matvec,
    "norm": ops.norm,
    "transpose": matrix_transpose,
    "matrix_transpose": matrix_transpose,
    "adjoint": adjoint,
    "trace": trace,
    "diag_part": diag_part,
    "diag": diag,
    "einsum": ops.einsum,
    "eye": ops.eye,
    "l2_normalize": nn.l2_normalize,
}
globals().update(_NAMES)
__all__ = sorted(_NAMES)
