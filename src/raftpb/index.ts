export * from './types.js';
export * from './codec.js';
export { ProtoDecodeError, Reader, Writer, WireType } from './wire.js';
