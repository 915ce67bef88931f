// Public surface of the Sheepdog protocol module (pure codecs; no I/O).
export * from './constants.js';
export * from './header.js';
export * from './frame.js';
export * from './oid.js';
export * from './hash.js';
