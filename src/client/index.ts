// Public surface of the sheep client library.
export * from './address.js';
export * from './errors.js';
export * from './connection.js';
export * from './transport.js';
export * from './client.js';
