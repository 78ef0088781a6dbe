"""Wire codecs for the inference protocols: pure functions between request bytes and numpy."""
