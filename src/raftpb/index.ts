export * from './types.js';
export * from './codec.js';
export { ProtoDecodeError, Reader, Writer, WireType, varintSize } from './wire.js';
