"""`onecard`: the admin command line of OneCard Hub, over the admin RPCs (through the SDK only).

    onecard --hub 127.0.0.1:50051 --operator province-admin report --format csv --out usage.csv

Exit codes: 0 ok, 1 the hub refused or failed the call (the typed error is printed), 2 usage.
"""
