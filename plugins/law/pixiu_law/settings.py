"""Scrapy settings for the law domain's spiders: polite defaults for small public government sites.

`pixiu.crawl` merges this module into every crawl of a `pixiu_law` spider; output (FEEDS) and the
job directory are set by pixiu itself.
"""

BOT_NAME = "pixiu_law"
USER_AGENT = "pixiu_law/0.1 (research crawler collecting public guiding cases for legal NLP; obeys robots.txt)"

ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS_PER_DOMAIN = 1
DOWNLOAD_DELAY = 1  # seconds between requests to one site, at least; AutoThrottle may wait longer
DOWNLOAD_TIMEOUT = 30

AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 2
AUTOTHROTTLE_MAX_DELAY = 60
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0  # one request in flight per site on average

RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_HTTP_CODES = [408, 429, 500, 502, 503, 504, 522, 524]  # transient: timeouts, rate limits, overload

ITEM_PIPELINES = {
    "pixiu_law.pipelines.ValidateCasePipeline": 300,
    "pixiu_law.pipelines.DedupeCasePipeline": 400,
}
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"
