"""Scrapy settings for the zhihu domain's spiders: polite defaults for one busy public site.

`pixiu.crawl` merges this module into every crawl of a `pixiu_zhihu` spider; output (FEEDS) and the
job directory (resumable crawls) are set by pixiu itself. Cookies and the User-Agent can also be given
per crawl as spider arguments (`--arg cookies=…`, `--arg user_agent=…`).
"""

BOT_NAME = "pixiu_zhihu"
USER_AGENT = "pixiu_zhihu/0.1 (research crawler summarising public Q&A; obeys robots.txt)"

ROBOTSTXT_OBEY = True  # robots.txt is matched against USER_AGENT above, whatever user_agent a crawl sends
CONCURRENT_REQUESTS_PER_DOMAIN = 1
DOWNLOAD_DELAY = 2  # seconds between requests to the site, at least; AutoThrottle may wait longer
DOWNLOAD_TIMEOUT = 30

AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 3
AUTOTHROTTLE_MAX_DELAY = 60
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0  # one request in flight on average

RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_HTTP_CODES = [408, 429, 500, 502, 503, 504, 522, 524]  # transient: timeouts, rate limits, overload

COOKIES_ENABLED = True  # cookies the site sets (and those given with --arg cookies) are sent back

ITEM_PIPELINES = {
    "pixiu_zhihu.pipelines.CleanTextPipeline": 300,
    "pixiu_zhihu.pipelines.AnswerFilterPipeline": 400,
}
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"
