"""Data-ingestion checks: shard readers, provenance manifests (Croissant export), poisoning detection."""
