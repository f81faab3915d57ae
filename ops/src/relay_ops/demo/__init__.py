"""`relay demo`: one sample task through the public API of a local stack, watched live."""
