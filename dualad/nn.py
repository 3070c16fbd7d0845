"""Neural-network names under which TensorFlow users look for these ops."""
from .ops import log_softmax, relu, sigmoid, softmax, tanh  # noqa: F401
