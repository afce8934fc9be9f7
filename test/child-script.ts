// A TypeScript file a test runs as a child process (a WAL appender killed with SIGKILL, an
// import interrupted part way), made runnable by plain `node`: esbuild packs it with the
// sources it imports into one ES module, built from the sources as they are now.
//
// Why not `node --import tsx child.ts`: tsx's loader hooks run on a thread of their own and
// every import crosses over to it, so each child cost about 0.5 CPU s more to start than the
// same code packed (0.75 against 0.25 CPU s for the WAL appender); kill9's 25 children alone
// spent 12 CPU s of the suite on it (bench/suite/README.md, session 14).

import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// Under the repository, so that the packages the child imports (left outside the pack:
// native addons must load from their own directories) resolve from its node_modules.
const OUT_DIR = path.join(ROOT, 'dist', 'test-children');

const packed = new Map<string, Promise<string>>();

/**
 * The path of `script` (a .ts file) packed into one .mjs that `node` runs as it is. Named
 * by the content's hash, so workers packing the same script at once write the same bytes,
 * each through a rename of its own temporary file.
 */
export function childScript(script: string): Promise<string> {
  let p = packed.get(script);
  if (p === undefined) {
    p = pack(script);
    packed.set(script, p);
  }
  return p;
}

async function pack(script: string): Promise<string> {
  const result = await build({
    entryPoints: [script],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    logLevel: 'warning',
  });
  const code = result.outputFiles[0]!.contents;
  const hash = createHash('sha256').update(code).digest('hex').slice(0, 16);
  const file = path.join(OUT_DIR, `${path.basename(script, '.ts')}-${hash}.mjs`);
  if (!existsSync(file)) {
    mkdirSync(OUT_DIR, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, code);
    renameSync(tmp, file);
  }
  return file;
}
