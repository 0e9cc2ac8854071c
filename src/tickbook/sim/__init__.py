"""A local Binance-compatible exchange on loopback: see docs/sim.md."""
