// Child process for import-crash.test.ts: imports a bbolt file into a store and kills
// itself with SIGKILL at the point named on the command line ("batch:<n>" after n
// batches have landed in the temporary store, or "rename" once it is complete).

import { pino } from 'pino';
import { importBoltDb } from '../../../src/server/import/bolt-import.js';

const [boltPath, dbDir, at] = process.argv.slice(2) as [string, string, string];
const die = (): never => {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
};
await importBoltDb(boltPath, dbDir, pino({ enabled: false }), {
  onBatch: (n) => void (at === `batch:${n}` && die()),
  beforeRename: () => void (at === 'rename' && die()),
});
