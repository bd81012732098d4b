"""The hub's rules: plain Python, no I/O, no grpc, no database driver."""
