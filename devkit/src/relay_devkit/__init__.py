"""What only Relay's tests and benchmarks use (never shipped to operators): pytest fixtures,
fake model endpoints, the public-API test client, the benchmarks and contract generation."""
