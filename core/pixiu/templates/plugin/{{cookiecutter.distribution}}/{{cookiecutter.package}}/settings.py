"""Scrapy settings for this plugin's spiders: pixiu's polite defaults. pixiu sets the output feed and job folder itself."""

from pixiu.crawl import POLITE_SETTINGS

globals().update(POLITE_SETTINGS)  # robots.txt, one request at a time, delays, AutoThrottle, retries

BOT_NAME = "{{ cookiecutter.package }}"
USER_AGENT = "{{ cookiecutter.package }}/0.1 (pixiu domain crawler; obeys robots.txt)"
