"""A toy crawling domain for core tests: one spider over a loopback site, polite settings, a dedupe pipeline."""
