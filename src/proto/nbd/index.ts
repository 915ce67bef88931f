// Sheepfold's NBD protocol library: constants, message codecs and incremental frame decoders (pure).
export * from './constants.js';
export * from './errors.js';
export * from './messages.js';
export * from './decoder.js';
