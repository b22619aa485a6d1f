"""pixiu_medical: the Huatuo-style medical vertical (knowledge graph -> instruction Q&A)."""

__version__ = "0.1.0"
