// Moved to util/ (every layer uses it, not only SIP); this re-export keeps old imports working.
export * from '../util/clock.ts';
