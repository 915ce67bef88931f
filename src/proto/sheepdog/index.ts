// Public surface of the Sheepdog protocol module (pure codecs; no I/O).
export * from './constants.js';
export * from './header.js';
export * from './frame.js';
export * from './oid.js';
export * from './hash.js';
export * from './cstring.js';
export * from './inode.js';
export * from './bitmap.js';
export * from './node.js';
export * from './vdi-state.js';
export * from './cluster-info.js';
export * from './attr.js';
export * from './ring.js';
