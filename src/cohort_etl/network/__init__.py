"""Federated network: aggregate-only site packages (export) and coordinator pooling."""
