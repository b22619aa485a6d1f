"""Scrapy settings for the zhihu domain's spiders: pixiu's polite defaults, slower still for one busy site.

`pixiu.crawl` merges this module into every crawl of a `pixiu_zhihu` spider; output (FEEDS) and the
job directory (resumable crawls) are set by pixiu itself. Cookies and the User-Agent can also be given
per crawl as spider arguments (`--arg cookies=…`, `--arg user_agent=…`).
"""

from pixiu.crawl import POLITE_SETTINGS

globals().update(POLITE_SETTINGS)  # robots.txt, one request at a time, delays, AutoThrottle, retries

BOT_NAME = "pixiu_zhihu"
USER_AGENT = "pixiu_zhihu/0.1 (research crawler summarising public Q&A; obeys robots.txt)"
# robots.txt is matched against USER_AGENT above, whatever user_agent a crawl sends

DOWNLOAD_DELAY = 2  # one site serves every request: twice pixiu's default gap
AUTOTHROTTLE_START_DELAY = 3

COOKIES_ENABLED = True  # cookies the site sets (and those given with --arg cookies) are sent back

ITEM_PIPELINES = {
    "pixiu_zhihu.pipelines.CleanTextPipeline": 300,
    "pixiu_zhihu.pipelines.AnswerFilterPipeline": 400,
}
