"""Grants (奖助学金): batches submitted by RPC or CSV, advance notice, approval, payment through the
co-branded bank with retries and inquiry, batch and coverage reports. See hub/README.md."""
