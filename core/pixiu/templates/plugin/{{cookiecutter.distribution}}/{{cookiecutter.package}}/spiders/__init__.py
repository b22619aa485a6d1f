"""Scrapy spiders of the `{{ cookiecutter.name }}` domain; `pixiu domain crawl {{ cookiecutter.name }}` runs them."""
