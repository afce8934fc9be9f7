// Starts one of the backup's worker threads (export-worker.ts, hash-worker.ts) from the
// compiled file beside this one, or from the sources through tsx when they run as they
// are (the tests).
//
// Either way the worker is started as code that imports the file, with the process's
// Node flags inherited: a worker started from a file refuses the flags about the main
// script's own input (a program embedding a member as `node --input-type=module -e
// ...`), and a worker given its flags explicitly refuses the process-wide ones (`node
// --max-old-space-size=... bin/etcd-ts`), which an inherited list drops.

import { Worker } from 'node:worker_threads';

export type BackupWorker = 'export-worker' | 'hash-worker';

export function startWorker(name: BackupWorker, workerData?: unknown): Worker {
  const here = import.meta.url;
  // tsx's loader may add a query to the module's URL
  const load = new URL(here).pathname.endsWith('.ts')
    ? `import('tsx/esm/api').then((tsx) => tsx.tsImport(${JSON.stringify(new URL(`./${name}.ts`, here).href)}, ${JSON.stringify(here)}))`
    : `import(${JSON.stringify(new URL(`./${name}.js`, here).href)})`;
  return new Worker(load, { eval: true, workerData });
}
