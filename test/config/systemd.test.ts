// notify/notifyReady against a real AF_UNIX datagram socket that, like systemd with
// NotifyAccess=main, reads the sender's credentials (SO_PASSCRED): a datagram counts only
// when the kernel says it came from the expected process.

import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/server/logger.js';
import { notify, notifyReady } from '../../src/server/systemd.js';
import { listenNotify, stopNotifyListeners } from './notify-listener.js';

const dir = mkdtempSync(join(tmpdir(), 'config-eng-notify-'));
chmodSync(dir, 0o777);
afterAll(() => {
  stopNotifyListeners();
  rmSync(dir, { recursive: true, force: true });
});

describe('notifyReady', () => {
  it('does nothing without NOTIFY_SOCKET', async () => {
    expect(notifyReady({ env: {} })).toEqual({ sent: false, reason: 'NOTIFY_SOCKET is not set' });
  });

  it('sends READY=1 from this very process to a socket path (what NotifyAccess=main accepts)', async () => {
    const path = join(dir, 'notify.sock');
    const l = await listenNotify(path);
    expect(notifyReady({ env: { NOTIFY_SOCKET: path } })).toEqual({ sent: true });
    expect(await l.next()).toEqual({ pid: process.pid, text: 'READY=1' });
    expect(notify('STOPPING=1', { env: { NOTIFY_SOCKET: path } })).toEqual({ sent: true });
    expect(await l.next()).toEqual({ pid: process.pid, text: 'STOPPING=1' });
    l.stop();
  });

  it('reaches abstract-namespace sockets ("@name")', async () => {
    const name = `@config-eng-notify-${process.pid}`;
    const l = await listenNotify(name);
    expect(notifyReady({ env: { NOTIFY_SOCKET: name } }).sent).toBe(true);
    expect(await l.next()).toEqual({ pid: process.pid, text: 'READY=1' });
    l.stop();
  });

  it('never throws: a socket nobody listens on is reported, and logged', async () => {
    const warnings: unknown[] = [];
    const logger = {
      info: () => undefined,
      warn: (obj: unknown, msg: string) => void warnings.push([obj, msg]),
    } as unknown as Logger;
    const r = notifyReady({ env: { NOTIFY_SOCKET: join(dir, 'nobody.sock') }, logger });
    expect(r).toEqual({ sent: false, reason: `sendto ${join(dir, 'nobody.sock')}: no such file or directory` });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toEqual([expect.objectContaining({ 'notify-socket': join(dir, 'nobody.sock') }), 'failed to notify systemd (READY=1)']);
  });

  it('refuses addresses it cannot reach (e.g. vsock) without trying', async () => {
    const r = notifyReady({ env: { NOTIFY_SOCKET: 'vsock:2:1234' } });
    expect(r).toEqual({ sent: false, reason: 'unsupported NOTIFY_SOCKET address "vsock:2:1234"' });
  });
});
