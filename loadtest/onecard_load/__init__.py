"""OneCard load tests: Locust users and shapes for the authorization path, and the tools around them.

The Locust side (`grpc_user`, `options`, `users`, `shapes`) imports locust, which monkey-patches the
process for gevent; it is loaded only by the `locust` command through the locustfiles in `loadtest/`.
Everything else here (`deck`, `profiles`, `stats`, `processes`, `prepare`, `run`, `measure`) is plain
Python that never imports gevent or locust, so tests and scripts can use it next to grpc.aio.
"""
