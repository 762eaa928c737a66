"""Voice of the customer: text cleaning, sentiment, emotions, topics, PII masking and their validation."""
