"""Scrapy settings for this plugin's spiders: polite defaults. pixiu sets the output feed and job folder itself."""

BOT_NAME = "{{ cookiecutter.package }}"
USER_AGENT = "{{ cookiecutter.package }}/0.1 (pixiu domain crawler; obeys robots.txt)"

ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS_PER_DOMAIN = 1
DOWNLOAD_DELAY = 1
DOWNLOAD_TIMEOUT = 30

AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 2
AUTOTHROTTLE_MAX_DELAY = 60

RETRY_ENABLED = True
RETRY_TIMES = 3

FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"
