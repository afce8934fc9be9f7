// What a plain member loads at start: every package in its static import graph is
// compiled at every start (issue 19), so packages only some members use stay behind a
// dynamic import or a require at the point of use. Starts from the command line
// (bin/main.ts) and the member it imports (src/server/etcd.ts); type-only imports vanish
// at compile time and are left out. Checked twice: in the sources, and in the bundle
// bin/etcd-ts runs (scripts/bundle.ts), where a static import lands in a chunk a start
// loads and a dynamic one in a chunk of its own.

import { existsSync, readFileSync } from 'node:fs';
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

/** The parts of esbuild's metafile read here. */
interface Metafile {
  inputs: Record<string, { imports: Array<{ path: string; kind: string; original?: string }> }>;
  outputs: Record<string, { entryPoint?: string; inputs: Record<string, unknown>; imports: Array<{ path: string; kind: string }> }>;
}

/** The member's server, which bin/main.ts imports dynamically once the flags are valid. */
const SERVER = 'dist/src/server/etcd.js';

/**
 * What the bundle's chunks that a member start loads (the entry chunk, the server's chunk:
 * the one dynamic import a start takes, and every chunk those import statically) hold:
 * the packages their code imports, each with an input importing it, and the dynamic
 * imports whose code they hold all the same (what code splitting would have left out).
 */
function bundledStart(): { packages: Map<string, string>; inlinedDynamicImports: string[] } {
  const metafileAt = path.join(root, 'dist/bundle/metafile.json');
  if (!existsSync(metafileAt)) throw new Error(`${metafileAt} is missing: build with "npm run build" (tsc, then scripts/bundle.ts)`);
  const meta = JSON.parse(readFileSync(metafileAt, 'utf8')) as Metafile;
  const server = Object.keys(meta.outputs).find((o) => meta.outputs[o]!.entryPoint === SERVER);
  if (server === undefined) throw new Error('the bundle has no chunk for dist/src/server/etcd.js: the server is no longer a dynamic import of bin/main.ts');
  const chunks = new Set<string>();
  const queue = ['dist/bundle/main.js', server];
  for (let chunk = queue.shift(); chunk !== undefined; chunk = queue.shift()) {
    if (chunks.has(chunk)) continue;
    chunks.add(chunk);
    for (const i of meta.outputs[chunk]!.imports) if (i.kind === 'import-statement' && meta.outputs[i.path] !== undefined) queue.push(i.path);
  }
  const startInputs = new Set([...chunks].flatMap((c) => Object.keys(meta.outputs[c]!.inputs)));
  const packages = new Map<string, string>();
  const inlinedDynamicImports: string[] = [];
  for (const input of startInputs) {
    for (const i of meta.inputs[input]!.imports) {
      if (i.kind === 'dynamic-import') {
        if (i.path !== SERVER && startInputs.has(i.path)) inlinedDynamicImports.push(`${i.path} (imported by ${input})`);
        continue;
      }
      const spec = i.original ?? i.path;
      if (!spec.startsWith('.') && !spec.startsWith('node:') && !path.isAbsolute(spec) && !packages.has(spec)) packages.set(spec, input);
    }
  }
  return { packages, inlinedDynamicImports };
}

function expectNoneOnDemand(loaded: Map<string, string>): void {
  const eager = [...loaded].filter(([pkg]) => LOADED_ON_DEMAND[pkg] !== undefined).map(([pkg, file]) => `${pkg} (imported by ${file}; needed for ${LOADED_ON_DEMAND[pkg]})`);
  expect(eager).toEqual([]);
  // the walk itself works: packages every member needs are found
  expect([...loaded.keys()]).toEqual(expect.arrayContaining(['classic-level', 'pino', 'protobufjs/light.js']));
}

describe('a member start', () => {
  it('imports no package that only some members use', () => {
    expectNoneOnDemand(staticPackages(['bin/main.ts', 'src/server/etcd.ts']));
  });

  it('loads no bundle chunk holding a package that only some members use', () => {
    const { packages, inlinedDynamicImports } = bundledStart();
    expectNoneOnDemand(packages);
    expect(inlinedDynamicImports).toEqual([]);
  });
});
