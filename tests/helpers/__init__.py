"""Helpers of the test suite (not installed): synthetic datasets, fake batches, tool runners.

Tests import them as ``helpers.<module>``: pytest puts ``tests/`` on
``sys.path`` (``pythonpath`` in pyproject.toml), because a package named
``tests`` is already installed by mmsegmentation's wheel.
"""
