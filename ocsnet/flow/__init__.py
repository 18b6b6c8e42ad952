"""The flow model (stage 5): routing, max-min rates, completion times, latency, checks."""
