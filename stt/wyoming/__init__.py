"""Home Assistant's Wyoming protocol: its session rules, with the wyoming package's events."""
