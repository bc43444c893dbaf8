"""The U-Pay support bot application: config, assembly, i18n, runtime and the sandbox."""

import os

# Opt in to PTB's future behaviour: durations (e.g. RetryAfter.retry_after) as timedelta.
os.environ.setdefault("PTB_TIMEDELTA", "1")
