"""The conformance suite: fuzzes networks and checks adapters against the reference."""
