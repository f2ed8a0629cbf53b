"""Hugging Face Space entry point: `python app.py` (what a Space with `sdk: gradio` runs).

Puts the repository root on sys.path so that `app/` and `red_core/` import when this file is run
directly from any folder, then starts the same app as `python -m app` (arguments pass through).
Spaces set GRADIO_SERVER_NAME=0.0.0.0 and GRADIO_SERVER_PORT themselves.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.__main__ import main  # noqa: E402 - after the path fix; the package app/ wins over this file

if __name__ == "__main__":
    main()
