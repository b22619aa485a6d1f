"""Scrapy spiders of the law domain."""
