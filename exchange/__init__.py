"""cfx exchange: matching engine and, around it, the pipeline stages of the exchange."""
