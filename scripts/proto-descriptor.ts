// Writes proto/etcd-api.json: the etcd API's .proto files parsed once here, at build
// time, into protobufjs' JSON descriptor, which src/server/pb.ts loads with
// Root.fromJSON instead of parsing the .proto text at every member start (a twentieth
// of a second of CPU, plus the parser's own modules). Generated, never hand-edited:
// test/server/proto-descriptor.test.ts fails when it no longer matches the .proto files.
//
//   npx tsx scripts/proto-descriptor.ts      (npm run build runs it)

import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

export const protoDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../proto');
export const descriptorFile = path.join(protoDir, 'etcd-api.json');

/** The files the member serves and decodes; their imports come along. */
const API_PROTOS = [
  'etcdserverpb/rpc.proto',
  'etcdserverpb/raft_internal.proto',
  'leasepb/lease.proto',
  'v3lockpb/v3lock.proto',
  'v3electionpb/v3election.proto',
  'grpc/health/v1/health.proto',
];

/** The descriptor's text, as written to descriptorFile. */
export function descriptorJson(): string {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => path.join(protoDir, target);
  root.loadSync(API_PROTOS, { keepCase: true });
  root.resolveAll();
  return `${JSON.stringify(root.toJSON(), null, 1)}\n`;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  writeFileSync(descriptorFile, descriptorJson());
}
