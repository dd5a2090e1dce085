"""moto_server, with DynamoDB's isolation.

DynamoDB applies each write, and each TransactWriteItems, atomically and in isolation:
the platform relies on it (quota increments, leases, publishes). moto's threaded server
does not: a transaction whose condition fails restores a deep copy of the table taken when
it started, which can undo a write another request committed meanwhile (seen as one quota
slot too many in the concurrent quota test). Here every DynamoDB item operation of the
emulator runs under one lock, which is what DynamoDB guarantees, so the tests check our
code rather than the emulator's races. Everything else is `python3 -m moto.server`.

    python3 .ci/moto_server.py -H 127.0.0.1 -p 5055
"""

import functools
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

_LOCK = threading.RLock()


def _serialized(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with _LOCK:
            return method(*args, **kwargs)

    return wrapper


for _name in (
    "put_item",
    "get_item",
    "query",
    "scan",
    "update_item",
    "delete_item",
    "transact_write_items",
    "transact_get_items",
    "batch_write_item",
):
    if hasattr(DynamoDBBackend, _name):
        setattr(DynamoDBBackend, _name, _serialized(getattr(DynamoDBBackend, _name)))

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
