// Moved to util/ (the P-CSCF's registrations use it too); this re-export keeps the load imports working.
export * from '../util/timer-heap.ts';
