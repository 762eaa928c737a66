"""journeylib: customer journey mapping for Customer Success teams."""

__version__ = "0.1.0"
