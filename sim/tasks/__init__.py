"""The four SO-101 tasks as gymnasium environments (see :mod:`sim` for their ids)."""
