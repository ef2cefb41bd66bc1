"""moto_server with SQS ReceiveMessage made atomic.

moto's SQS backend picks the visible messages of a ReceiveMessage and marks them received without
a lock (moto/sqs/models.py, SQSBackend.receive_message), and moto_server answers requests on
threads: two concurrent receives can both get the same message, which real SQS never does. Our
tests assert exactly that property of the queue, so this wrapper serialises the pick-and-mark part
of ReceiveMessage with one lock, released while a long poll waits for messages (so waiting
receivers do not block each other). Everything else is moto as installed. If moto's internals
change name, the wrapper says so and runs moto unchanged.

Usage: python moto_server_atomic_receive.py -H HOST -p PORT   (the moto_server arguments)
"""

import sys
import threading

from moto.server import main


def patch() -> None:
    try:
        from moto.sqs import models
        receive = models.SQSBackend.receive_message
        wait = models.Queue.wait_for_messages
    except (ImportError, AttributeError) as e:
        print(f"moto_server_atomic_receive: not patched ({e}); running moto as is", file=sys.stderr)
        return
    lock = threading.RLock()

    def atomic_receive(self, *args, **kwargs):
        with lock:
            return receive(self, *args, **kwargs)

    def unlocked_wait(self, timeout):
        lock.release()
        try:
            return wait(self, timeout)
        finally:
            lock.acquire()

    models.SQSBackend.receive_message = atomic_receive
    models.Queue.wait_for_messages = unlocked_wait


if __name__ == "__main__":
    patch()
    main(sys.argv[1:])
