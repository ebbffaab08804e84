//! golive's benchmarks live in `benches/`; this library only gives them a home.
