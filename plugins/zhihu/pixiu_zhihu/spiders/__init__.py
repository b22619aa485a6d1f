"""Scrapy spiders of the zhihu domain."""
