"""The crawler: polite, guarded, resumable discovery and download of media from web sources.

See :mod:`vigil.crawl.crawler` for the flow, :mod:`vigil.crawl.fetch` for politeness and limits,
:mod:`vigil.crawl.netguard` for the SSRF guard and :mod:`vigil.crawl.discover` for feed/page parsing.
"""

from vigil.crawl.crawler import CrawlProblem, CrawlReport, crawl, crawl_async
from vigil.crawl.fetch import FetchError
from vigil.crawl.netguard import BlockedAddress, check_url

__all__ = ["BlockedAddress", "CrawlProblem", "CrawlReport", "FetchError", "check_url", "crawl", "crawl_async"]
