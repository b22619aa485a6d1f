"""pixiu's own seed tasks for `pixiu data self-instruct` (package data)."""
