"""The computewatch domain: parties, deal vocabulary, event payloads, units and extraction (no IO)."""
