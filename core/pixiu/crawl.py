"""Crawling for domains: `run_crawl` runs a domain's scrapy spiders; plugins use `POLITE_SETTINGS` and `DedupePipeline`.

Each spider runs with its plugin's `settings.py` (found as `<top-level package>.settings`), then
pixiu's own: FEEDS appending JSON lines to the output, and a job directory so that an interrupted
crawl resumes where it stopped. Scrapy's reactor cannot be restarted, so call `run_crawl` at most
once per process (tests run it in a subprocess: `pixiu.testing.loopback.crawl_in_subprocess`).

A plugin's `settings.py` starts from the polite defaults and adds its own:

    from pixiu.crawl import POLITE_SETTINGS

    globals().update(POLITE_SETTINGS)
    BOT_NAME = "pixiu_law"
    USER_AGENT = "pixiu_law/0.1 (research crawler; obeys robots.txt)"
    ITEM_PIPELINES = {"pixiu_law.pipelines.DedupeCasePipeline": 400}
"""

from __future__ import annotations

import hashlib
import importlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixiu.domain import Domain
from pixiu.errors import PixiuError
from pixiu.paths import pixiu_home

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import Settings
    from twisted.python.failure import Failure

POLITE_SETTINGS: dict[str, Any] = {
    "ROBOTSTXT_OBEY": True,
    "USER_AGENT": "pixiu (research crawler for domain LLM tuning; obeys robots.txt)",
    "CONCURRENT_REQUESTS_PER_DOMAIN": 1,  # one request at a time per site
    "DOWNLOAD_DELAY": 1,  # seconds between requests to one site, at least; AutoThrottle may wait longer
    "DOWNLOAD_TIMEOUT": 30,
    "AUTOTHROTTLE_ENABLED": True,
    "AUTOTHROTTLE_START_DELAY": 2,
    "AUTOTHROTTLE_MAX_DELAY": 60,
    "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,  # one request in flight per site on average
    "RETRY_ENABLED": True,
    "RETRY_TIMES": 3,
    "RETRY_HTTP_CODES": [408, 429, 500, 502, 503, 504, 522, 524],  # transient: timeouts, rate limits, overload
    "FEED_EXPORT_ENCODING": "utf-8",
    "LOG_LEVEL": "INFO",
}
"""Scrapy settings every domain crawler starts from: robots.txt obeyed, one request at a time per site, delays
and AutoThrottle, retries of transient errors. Set your own USER_AGENT (robots.txt is matched against it)."""

_MAX_KEY_CHARS = 64
"""A longer key (e.g. a whole text) is kept as its SHA-1, so the persisted state stays small."""


def seen_keys(crawler: Crawler | None, state_key: str) -> set[str]:
    """The set of keys seen, kept in the spider's persisted state (resumable with a job directory) when it has one.

    Call it once the spider exists (from `process_item`), and keep the set: without a job directory, or
    before the spider starts, it is a new set each call.
    """
    state = getattr(getattr(crawler, "spider", None), "state", None)
    return state.setdefault(state_key, set()) if isinstance(state, dict) else set()


class DedupePipeline:
    """Drop an item whose key was seen before in this crawl or the crawl it resumes; subclass it to name the key.

    The key is the first non-empty field of `key_fields`. Items without any pass unchanged (validate them
    in an earlier pipeline). A dropped item is reported with `reason`, e.g. "duplicate case: already crawled".
    """

    key_fields: tuple[str, ...] = ("url",)
    """Item fields tried in order; the first non-empty one is the item's key."""
    state_key: str = "seen_keys"
    """Name of the set of keys in the spider's persisted state."""
    reason: str = "duplicate item: already crawled"
    """The DropItem message, counted as the drop reason in the crawl summary."""

    def __init__(self, crawler: Crawler | None = None):
        self.crawler = crawler
        self._seen: set[str] | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DedupePipeline:
        """Build the pipeline with the crawler, whose spider carries the persisted state."""
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        """Return the item unless its key was seen, in which case raise DropItem with `reason`."""
        from itemadapter import ItemAdapter
        from scrapy.exceptions import DropItem

        adapter = ItemAdapter(item)
        value = next((adapter.get(name) for name in self.key_fields if adapter.get(name)), None)
        if value is None:
            return item
        key = str(value)
        if len(key) > _MAX_KEY_CHARS:
            key = hashlib.sha1(key.encode("utf-8")).hexdigest()
        if self._seen is None:
            self._seen = seen_keys(self.crawler, self.state_key)
        if key in self._seen:
            raise DropItem(self.reason)
        self._seen.add(key)
        return item


@dataclass
class CrawlSummary:
    """What one `run_crawl` did: items written, items dropped by reason, and errors."""

    output: Path
    """The JSONL file items were appended to."""
    items_scraped: int = 0
    """Items that passed every pipeline and were written."""
    items_dropped: Counter[str] = field(default_factory=Counter)
    """Items a pipeline dropped, counted by the DropItem message."""
    errors: list[str] = field(default_factory=list)
    """Callback exceptions, download failures and unusual finishes, one line each."""
    finish_reasons: dict[str, str] = field(default_factory=dict)
    """Why each spider stopped, by spider name ("finished" when it ran to the end)."""

    def describe(self) -> str:
        """Return a few human-readable lines for the command line."""
        lines = [f"{self.items_scraped} items appended to {self.output}"]
        lines += [f"  dropped {count}: {reason}" for reason, count in self.items_dropped.most_common()]
        lines += [f"  spider {name}: {reason}" for name, reason in self.finish_reasons.items() if reason != "finished"]
        lines += [f"  error: {error}" for error in self.errors]
        return "\n".join(lines)


class _SignalCollector:
    """Bound-method signal handlers feeding a CrawlSummary.

    Scrapy holds signal handlers by weak reference, so handlers must be methods of an object the
    caller keeps alive; a lambda would be collected at once and silently count nothing.
    """

    def __init__(self, summary: CrawlSummary, crawler: Crawler):
        self.summary = summary
        self.crawler = crawler

    def connect(self) -> None:
        """Attach the handlers to the crawler's signals."""
        from scrapy import signals

        self.crawler.signals.connect(self.item_scraped, signal=signals.item_scraped)
        self.crawler.signals.connect(self.item_dropped, signal=signals.item_dropped)
        self.crawler.signals.connect(self.spider_error, signal=signals.spider_error)
        self.crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    def item_scraped(self, item: Any, response: Response, spider: Spider) -> None:
        """Count an item that reached the feed."""
        self.summary.items_scraped += 1

    def item_dropped(self, item: Any, response: Response, exception: BaseException, spider: Spider) -> None:
        """Count a dropped item under its drop reason."""
        self.summary.items_dropped[str(exception) or type(exception).__name__] += 1

    def spider_error(self, failure: Failure, response: Response | Failure, spider: Spider) -> None:
        """Record an exception raised by a spider callback (or errback, where scrapy passes a Failure)."""
        url = getattr(response, "url", None) or getattr(getattr(failure, "request", None), "url", "?")
        self.summary.errors.append(f"{spider.name}: {failure.getErrorMessage()} (at {url})")

    def crawl_failed(self, failure: Failure) -> None:
        """Record a crawl that could not start or broke down (bad settings, spider arguments...)."""
        self.summary.errors.append(f"{_spider_name(self.crawler.spidercls)}: crawl failed: {failure.getErrorMessage()}")

    def spider_closed(self, spider: Spider, reason: str) -> None:
        """Record why the spider stopped and how many downloads failed or were refused."""
        self.summary.finish_reasons[spider.name] = reason
        stats = self.crawler.stats.get_stats() if self.crawler.stats else {}
        forbidden = stats.get("robotstxt/forbidden", 0)
        failed = stats.get("downloader/exception_count", 0) - forbidden  # scrapy counts refusals as failures too
        ignored = stats.get("httperror/response_ignored_count", 0)
        if forbidden:
            self.summary.errors.append(f"{spider.name}: {forbidden} requests refused by the site's robots.txt")
        if failed:
            self.summary.errors.append(f"{spider.name}: {failed} downloads failed (network errors, after retries)")
        if ignored:
            self.summary.errors.append(f"{spider.name}: {ignored} pages answered with an HTTP error status")


def run_crawl(
    domain: Domain,
    output: Path,
    spider_args: dict[str, str] | None = None,
    job_dir: Path | None = None,
) -> CrawlSummary:
    """Run every spider of `domain`, appending scraped items to `output` as JSON lines.

    Args:
        domain: The domain whose `spiders` ("module:Class" paths) to run.
        output: JSONL file to append to; its folder is created.
        spider_args: Keyword arguments for every spider, e.g. {"start_url": "..."}.
        job_dir: Folder for scrapy's resumable job state, one subfolder per spider
            (default: PIXIU_HOME/crawl/<domain>). Run again with the same folder to resume.

    Returns:
        Counts of items written and dropped, with errors, collected from scrapy's signals.

    Raises:
        PixiuError: The domain has no spiders, or a spider path cannot be imported.
    """
    from scrapy.crawler import Crawler, CrawlerProcess

    if not domain.spiders:
        raise PixiuError(f"domain {domain.name!r} has no spiders to crawl with; its plugin lists none in `spiders`")
    output = Path(output).resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    job_dir = Path(job_dir) if job_dir is not None else pixiu_home() / "crawl" / domain.name
    summary = CrawlSummary(output=output)
    spiders = [(path, _import_spider(path)) for path in domain.spiders]
    settings = [_settings_for(path, cls, output, job_dir) for path, cls in spiders]
    process_settings = settings[0].copy()  # the process's settings leak into every crawler: keep only shared ones
    for per_spider in ("JOBDIR", "FEEDS"):
        del process_settings[per_spider]
    process = CrawlerProcess(process_settings)
    collectors = []  # signal handlers are weak references: these must live until the crawl ends
    for index, ((_, spider_cls), spider_settings) in enumerate(zip(spiders, settings, strict=True)):
        # The first crawler installs the reactor, as CrawlerProcess does for the crawlers it creates.
        crawler = Crawler(spider_cls, spider_settings, init_reactor=index == 0)
        collectors.append(_SignalCollector(summary, crawler))
        collectors[-1].connect()
        process.crawl(crawler, **(spider_args or {})).addErrback(collectors[-1].crawl_failed)
    process.start()
    return summary


def _import_spider(path: str) -> type:
    """Import a spider class from a "module:Class" path, with an error saying how to fix a bad path."""
    module_name, _, class_name = path.partition(":")
    if not module_name or not class_name:
        raise PixiuError(f"spider path {path!r} must look like 'package.module:ClassName'")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise PixiuError(f"cannot load spider {path!r}: {exc}. Is the plugin installed and the path right?") from exc


def _settings_for(path: str, spider_cls: type, output: Path, job_dir: Path) -> Settings:
    """Build one spider's settings: its plugin's settings module, then pixiu's output and job folder."""
    from scrapy.settings import Settings

    settings = Settings()
    package = path.partition(":")[0].split(".")[0]
    try:
        plugin_settings = importlib.import_module(f"{package}.settings")
    except ModuleNotFoundError as exc:
        if exc.name != f"{package}.settings":
            raise
    else:
        settings.setmodule(plugin_settings, priority="project")
    # "cmdline" priority: a spider's custom_settings must not redirect pixiu's output.
    settings.set(
        "FEEDS",
        {output: {"format": "jsonlines", "encoding": "utf-8", "overwrite": False}},
        priority="cmdline",
    )
    settings.set("JOBDIR", str(job_dir / _spider_name(spider_cls)), priority="cmdline")
    return settings


def _spider_name(spider_cls: type) -> str:
    """Return a spider class's `name`, or its class name when it has none."""
    return getattr(spider_cls, "name", None) or spider_cls.__name__
