"""Imported ahead by the worker processes' forkserver when a CNN method is configured.

The forkserver then imports torch once, and every worker forks with it loaded instead of
spending a second of CPU importing it again. glibc is told to keep its buffers first, as
`efficientnet` does before torch allocates anything; forked workers inherit that setting.
"""

from dupwatch.methods.efficientnet import keep_malloc_arenas

keep_malloc_arenas()

import torch  # noqa: E402, F401
