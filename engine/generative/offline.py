"""Import transformers with the hub switched off.

The studio opens a folder or nothing: a missing file must be reported, never
fetched. huggingface_hub reads HF_HUB_OFFLINE once, at import, so it is set
before the first import and patched into the constants if another module got
there first. Progress bars are turned off because tqdm starts a monitor thread
and writes to stderr, which would garble the CLI's JSON and leak a thread.
Weights load on the calling thread (HF_DEACTIVATE_ASYNC_LOAD): transformers'
loader pool is shut down without waiting, so its threads would outlive the load.
"""

from __future__ import annotations

import os
import sys


def import_transformers():
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["HF_DEACTIVATE_ASYNC_LOAD"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no tokenizer worker threads in a benchmark
    if "huggingface_hub.constants" in sys.modules:
        sys.modules["huggingface_hub.constants"].HF_HUB_OFFLINE = True
    import transformers
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    return transformers
