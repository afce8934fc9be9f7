# python-etcd3 with user= and password=, as applications configure it, over TLS (gRPC sends
# call credentials only on a secure channel): first with auth off (python-etcd3
# authenticates when the client is made, and etcd 3.4 refuses that while auth is off), then,
# once the caller has enabled auth, as a user whose role grants readwrite on /py/ only.
# Prints one line per check. Arguments: port, phase (off|on), CA file.
import sys

import etcd3
import grpc

port = int(sys.argv[1])
phase = sys.argv[2]
ca = sys.argv[3]


def client(**creds):
    return etcd3.client(host='127.0.0.1', port=port, ca_cert=ca, **creds)


def code_of(fn):
    try:
        fn()
        return 'ok'
    except grpc.RpcError as e:
        return '%s %s' % (e.code().name, e.details())
    except Exception as e:  # python-etcd3 wraps some errors in its own exceptions
        return type(e).__name__


if phase == 'off':
    print('auth off:', code_of(lambda: client(user='nobody', password='whatever')))
    c = client()
    c.put('/py/off', 'v')
    print('auth off: without credentials', c.get('/py/off')[0].decode())
else:
    c = client(user='py', password='pw')
    c.put('/py/on', 'v')
    print('auth on: own prefix', c.get('/py/on')[0].decode())
    print('auth on: outside prefix', code_of(lambda: c.put('/other', 'v')))
    print('auth on: wrong password', code_of(lambda: client(user='py', password='bad').get('/py/on')))
