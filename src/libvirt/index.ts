export * from './client.js';
export * from './connection.js';
export * from './errors.js';
export * from './protocol.js';
export * from './supervisor.js';
export * from './uri.js';
export * from './wire.js';
export * from './xdr.js';
