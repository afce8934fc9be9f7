# Drives an etcd v3 server with python-etcd3 (Debian python3-etcd3, gRPC) and prints
# one line per check; the vitest suite compares the lines.
import sys
import threading
import time

import etcd3

c = etcd3.client(host='127.0.0.1', port=int(sys.argv[1]))
c.put('/py/a', 'hello')
v, meta = c.get('/py/a')
print('get', v.decode(), meta.version)
print('prefix', sorted(m.key.decode() for _, m in c.get_prefix('/py/')))
lease = c.lease(10)
c.put('/py/leased', 'x', lease=lease)
print('lease', lease.remaining_ttl > 0, [k.decode() for k in lease.keys])
lease.refresh()
lease.revoke()
print('revoked', c.get('/py/leased')[0])
ok, _ = c.transaction(
    compare=[c.transactions.value('/py/a') == 'hello'],
    success=[c.transactions.put('/py/b', 'txn')],
    failure=[],
)
print('txn', ok, c.get('/py/b')[0].decode())
events = []
it, cancel = c.watch('/py/w')


def watch():
    for ev in it:
        events.append(type(ev).__name__)
        if len(events) >= 2:
            cancel()
            break


t = threading.Thread(target=watch)
t.start()
time.sleep(0.5)
c.put('/py/w', '1')
c.delete('/py/w')
t.join(10)
print('watch', events)
print('members', [m.name for m in c.members])
print('status', c.status().version.split('.')[0], c.status().leader.name)
lock = c.lock('l1', ttl=5)
with lock:
    print('locked', lock.is_acquired())
print('deleted', c.delete_prefix('/py/').deleted)
