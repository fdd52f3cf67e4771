"""What the tests and the benchmarks share: the plain-Python oracle of the design, event
factories, hypothesis strategies, the live server and the test database's helpers."""
