"""Test helpers for pixiu plugins, the built-in verticals included: fixtures, loopback services, contract checks.

Import the fixtures into a plugin's `tests/conftest.py` with `from pixiu.testing.fixtures import *`; they
give every test an empty `PIXIU_HOME` and a plugin manager that loads no installed plugin unless asked.
`pixiu.testing.loopback` serves fixture sites and a fake OpenAI-compatible teacher on 127.0.0.1.
`check_domain(domain)` is the contract test every domain's suite runs.
"""

from pixiu.testing.contract import check_domain

__all__ = ["check_domain"]
