"""Entry point of the frozen desktop build: the same `main` as the `autoglm-studio` console script.

PyInstaller needs a script, not a `module:function` entry point; keeping it this small means the frozen
app and the installed app can never behave differently.
"""

import multiprocessing
import sys

from studio.cli.main import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen child process must not start the CLI again
    sys.exit(main())
