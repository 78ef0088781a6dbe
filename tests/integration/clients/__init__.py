"""Client programs run in their own process (their protobuf symbols clash with Pier's)."""
