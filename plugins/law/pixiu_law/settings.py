"""Scrapy settings for the law domain's spiders: pixiu's polite defaults, for small public government sites.

`pixiu.crawl` merges this module into every crawl of a `pixiu_law` spider; output (FEEDS) and the
job directory are set by pixiu itself.
"""

from pixiu.crawl import POLITE_SETTINGS

globals().update(POLITE_SETTINGS)  # robots.txt, one request at a time, delays, AutoThrottle, retries

BOT_NAME = "pixiu_law"
USER_AGENT = "pixiu_law/0.1 (research crawler collecting public guiding cases for legal NLP; obeys robots.txt)"

ITEM_PIPELINES = {
    "pixiu_law.pipelines.ValidateCasePipeline": 300,
    "pixiu_law.pipelines.DedupeCasePipeline": 400,
}
