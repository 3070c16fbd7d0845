"""TensorFlow's `tf.autodiff` namespace."""
from .tape import ForwardAccumulator, GradientTape

__all__ = ["ForwardAccumulator", "GradientTape"]
