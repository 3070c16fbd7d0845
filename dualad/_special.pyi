import numpy as np
import numpy.typing as npt

def erf(x: npt.NDArray[np.floating] | np.floating) -> npt.NDArray[np.floating]: ...
