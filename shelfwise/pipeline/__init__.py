"""The jobs that write the warehouse's model tables: fit and publish, evaluate, tune, refresh."""
