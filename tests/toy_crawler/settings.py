"""The toy crawler's settings, written as a plugin writes its own."""

from pixiu.crawl import POLITE_SETTINGS

globals().update(POLITE_SETTINGS)

BOT_NAME = "toy_crawler"
USER_AGENT = "toy_crawler/0.1 (pixiu test crawler; obeys robots.txt)"
ITEM_PIPELINES = {"toy_crawler.plugin.DedupeEntryPipeline": 400}
