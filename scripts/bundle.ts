// Packs the command line (dist/bin/main.js, as tsc compiled it) and everything it imports
// into dist/bundle/, which bin/etcd-ts runs. Run after tsc (`npm run build`, `npm ci`'s
// prepare, scripts/test.sh): `node dist/scripts/bundle.js`.
//
// Why: a member start spent most of its CPU finding, reading and compiling ~200 of our
// files and the packages' hundreds more (bench/first-start/README.md). One bundle is a few
// files, and the suite starts hundreds of members.
//
// What stays as it was: the native addons' loaders (classic-level's binding.js, koffi: a
// .node file is found next to its package's own loader), and what the sources load with
// createRequire at the point of use (yaml, koffi, bcryptjs' path for the worker), which
// esbuild leaves to run time. Dynamic imports become chunks of their own, loaded when
// reached: the gateway and grpc-proxy modes, the server itself (not loaded for --help or
// a flag error), jose for --auth-token jwt. test/architecture/start-imports.test.ts reads the
// metafile written beside the bundle to check what a member start loads.

import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BUNDLE_DIR = path.join(root, 'dist/bundle');

/**
 * classic-level's JavaScript (and abstract-level's, some 30 small CommonJS files Node
 * would find and compile one by one at every start) goes in the bundle; the file that
 * loads its native addon stays in the package, where node-gyp-build looks for the
 * prebuilt .node beside it, and is required from there at run time.
 */
const nativeBindingsAtRunTime: Plugin = {
  name: 'native-bindings-at-run-time',
  setup(b) {
    b.onResolve({ filter: /^\.\/binding(\.js)?$/ }, (args) =>
      path.basename(args.resolveDir) === 'classic-level' ? { path: 'classic-level/binding.js', external: true } : undefined,
    );
  },
};

rmSync(BUNDLE_DIR, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  // the backup's worker threads load their own entries, beside the chunk that starts them (start-worker.ts)
  entryPoints: {
    main: 'dist/bin/main.js',
    'export-worker': 'dist/src/server/backup/export-worker.js',
    'hash-worker': 'dist/src/server/backup/hash-worker.js',
  },
  outdir: BUNDLE_DIR,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['koffi'],
  plugins: [nativeBindingsAtRunTime],
  // the CommonJS packages (pino, prom-client, protobufjs) require node's modules; an ES
  // module has no `require`, so each chunk makes one
  banner: { js: "import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);" },
  metafile: true,
  logLevel: 'warning',
});
writeFileSync(path.join(BUNDLE_DIR, 'metafile.json'), JSON.stringify(result.metafile));
