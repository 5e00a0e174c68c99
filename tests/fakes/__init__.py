"""Stand-ins for external services, shared by the tests, the benchmarks and Molecule."""
