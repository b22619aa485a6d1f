"""Fixtures of the law tests: pixiu's own test fixtures, as any plugin uses them."""

from pixiu.testing.fixtures import *  # noqa: F403
