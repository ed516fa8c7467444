"""Design-space exploration: `spatten sweep` and `spatten tune` on Dask."""
