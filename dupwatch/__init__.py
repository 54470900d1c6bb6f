"""dupwatch: tells you, within a second, when a photo that lands is a copy of one you already have."""

import os

# The arrays dupwatch multiplies are small: OpenBLAS's threads would only spin between them,
# burning a core that the decoding workers need. One BLAS thread per process (every process
# is already busy on its own core); a setting of the user's own wins. Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
