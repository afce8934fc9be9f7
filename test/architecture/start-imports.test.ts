// What a plain member loads at start: every package in its static import graph is
// compiled at every start (issue 19), so packages only some members use stay behind a
// dynamic import or a require at the point of use. Starts from the command line
// (bin/main.ts) and the member it imports (src/server/etcd.ts); type-only imports vanish
// at compile time and are left out.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Packages only some members use, and who does. */
const LOADED_ON_DEMAND: Record<string, string> = {
  '@grpc/grpc-js': 'grpc-proxy and gateway modes (the member serves gRPC on node:http2)',
  '@grpc/proto-loader': 'benches and tests',
  protobufjs: "the .proto parser: the member reads proto/etcd-api.json with 'protobufjs/light.js'",
  jose: '--auth-token jwt',
  yaml: '--config-file',
  bcryptjs: 'the bcrypt worker, on the first password',
  koffi: 'NOTIFY_SOCKET',
};

/** `import x from '...'`, `import { a, type B } from '...'`, `export ... from '...'`, `import '...'`; not `import type`. */
const STATIC_IMPORT = /^(?:import|export)\s+(?!type\s)(?:([^'";]*?)\s+from\s+)?['"]([^'"]+)['"]/gm;

function onlyTypes(bindings: string | undefined): boolean {
  const named = bindings?.match(/^\{([^}]*)\}$/s)?.[1];
  if (named === undefined) return false;
  const names = named.split(',').map((s) => s.trim()).filter((s) => s !== '');
  return names.length > 0 && names.every((n) => n.startsWith('type '));
}

/** The packages the static import graph from `entries` reaches, each with a file importing it. */
function staticPackages(entries: string[]): Map<string, string> {
  const packages = new Map<string, string>();
  const seen = new Set<string>();
  const queue = entries.map((e) => path.join(root, e));
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    if (seen.has(file)) continue;
    seen.add(file);
    for (const [, bindings, spec] of readFileSync(file, 'utf8').matchAll(STATIC_IMPORT)) {
      if (onlyTypes(bindings)) continue;
      if (spec!.startsWith('.')) queue.push(path.resolve(path.dirname(file), spec!.replace(/\.js$/, '.ts')));
      else if (!spec!.startsWith('node:') && !packages.has(spec!)) packages.set(spec!, path.relative(root, file));
    }
  }
  return packages;
}

describe('a member start', () => {
  it('imports no package that only some members use', () => {
    const loaded = staticPackages(['bin/main.ts', 'src/server/etcd.ts']);
    const eager = [...loaded].filter(([pkg]) => LOADED_ON_DEMAND[pkg] !== undefined).map(([pkg, file]) => `${pkg} (imported by ${file}; needed for ${LOADED_ON_DEMAND[pkg]})`);
    expect(eager).toEqual([]);
    // the walk itself works: packages every member needs are found
    expect([...loaded.keys()]).toEqual(expect.arrayContaining(['classic-level', 'pino', 'protobufjs/light.js']));
  });
});
