// V8 keeps a substring as a view of its parent (a "sliced string"): a header value kept from a
// parsed SIP message holds the whole message text alive. Long-lived state (a UE's Security-Server,
// Service-Route) keeps its own copy instead — with 100k UEs that is hundreds of MB (issue 9 §2).

/** A copy of `s` that references no other string. */
export function ownString(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}
