"""The runtime: configuration, and the wiring of journal, exchange, actors and servers."""
