// The PostgreSQL protocol 3.0 codec: pure, no sockets. Import from here.
export * from './backend.ts';
export * from './errors.ts';
export * from './framer.ts';
export * from './frontend.ts';
export * from './protocol.ts';
export * from './sqlstate.ts';
export * from './startup.ts';
