"""The computewatch domain (pure): parties, deal vocabulary, event payloads, units, extraction."""
