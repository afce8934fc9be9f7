// The module graph stays a tree of layers: no runtime import cycles anywhere in src/
// (a cycle makes initialisation order matter and hides a layer that should be split).
// Type-only imports are left out: they vanish at compile time.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import madge from 'madge';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

async function cycles(dir: string): Promise<string[][]> {
  const graph = await madge(path.join(root, dir), {
    fileExtensions: ['ts'],
    tsConfig: path.join(root, 'tsconfig.json'),
    detectiveOptions: { ts: { skipTypeImports: true }, es6: { skipTypeImports: true } },
  });
  return graph.circular();
}

describe('import graph', () => {
  it('src/ has no runtime import cycles', async () => {
    expect(await cycles('src')).toEqual([]);
  }, 60_000);
});
