"""pixiu_law: the legal charge-prediction vertical (case facts -> charges), CAIL2018-style."""
