"""Scrapy settings for the medical domain's spiders: pixiu's polite defaults, for a public health encyclopedia.

`pixiu.crawl` merges this module into every crawl of a `pixiu_medical` spider; output (FEEDS) and the
job directory are set by pixiu itself. The knowledge graph is written next to the feed (see
`pixiu_medical.pipelines.KnowledgeGraphPipeline`); set MEDICAL_KG_OUTPUT to put it elsewhere.
"""

from pixiu.crawl import POLITE_SETTINGS

globals().update(POLITE_SETTINGS)  # robots.txt, one request at a time, delays, AutoThrottle, retries

BOT_NAME = "pixiu_medical"
USER_AGENT = "pixiu_medical/0.1 (research crawler building a medical knowledge graph for NLP; obeys robots.txt)"

ITEM_PIPELINES = {
    "pixiu_medical.pipelines.ValidateDiseasePipeline": 300,
    "pixiu_medical.pipelines.DedupeDiseasePipeline": 400,
    "pixiu_medical.pipelines.KnowledgeGraphPipeline": 500,
}
MEDICAL_KG_OUTPUT = None  # default: next to the feed, raw.jsonl -> raw.kg.jsonl
