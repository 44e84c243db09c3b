"""The DuckDB event log of computewatch: append, read, projections, SQL sandbox, export."""
