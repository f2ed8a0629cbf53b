"""Imported at start-up by Python processes that the tests start (tests/conftest.py puts this folder on PYTHONPATH)."""

import os

if os.environ.get("RED_READ_AUDIT_DIR"):
    import red_read_audit

    red_read_audit.start_child()
