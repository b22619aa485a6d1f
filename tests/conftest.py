"""Core tests use pixiu's own test fixtures, as every plugin's tests do."""

from pixiu.testing.fixtures import *  # noqa: F403
