"""Starts line coverage in a Python process the test session started (line_coverage.py).

This directory is on `PYTHONPATH` only for the test session's processes.
"""

import line_coverage

line_coverage.start()
