"""Scrapy spiders of the medical domain."""
