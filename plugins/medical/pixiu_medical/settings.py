"""Scrapy settings for the medical domain's spiders: polite defaults for a public health encyclopedia.

`pixiu.crawl` merges this module into every crawl of a `pixiu_medical` spider; output (FEEDS) and the
job directory are set by pixiu itself. The knowledge graph is written next to the feed (see
`pixiu_medical.pipelines.KnowledgeGraphPipeline`); set MEDICAL_KG_OUTPUT to put it elsewhere.
"""

BOT_NAME = "pixiu_medical"
USER_AGENT = "pixiu_medical/0.1 (research crawler building a medical knowledge graph for NLP; obeys robots.txt)"

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
    "pixiu_medical.pipelines.ValidateDiseasePipeline": 300,
    "pixiu_medical.pipelines.DedupeDiseasePipeline": 400,
    "pixiu_medical.pipelines.KnowledgeGraphPipeline": 500,
}
MEDICAL_KG_OUTPUT = None  # default: next to the feed, raw.jsonl -> raw.kg.jsonl
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"
