"""pixiu_zhihu: the Zhihu Q&A vertical (many answers -> one concise summary)."""

__version__ = "0.1.0"
