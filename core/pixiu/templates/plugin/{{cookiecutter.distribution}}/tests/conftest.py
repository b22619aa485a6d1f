"""pixiu's test fixtures: an empty PIXIU_HOME and no auto-loaded plugins in every test."""

from pixiu.testing.fixtures import *  # noqa: F403
