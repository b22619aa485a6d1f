"""pixiu_law: the legal charge-prediction vertical (case facts -> charges), CAIL2018-style."""

__version__ = "0.1.0"
