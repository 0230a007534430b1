// The base of every error imsec throws on purpose. Each layer has its own subclass and a
// `code` union (see aka/errors.ts, secagree/errors.ts, ipsec/errors.ts) that callers and the
// CLI switch on. Messages name the field and the offending value, never key material.

export class ImsecError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Input that does not parse or is out of range (the CLI exits 2 on these). */
export class InputError extends ImsecError {
  constructor(message: string, code = 'BAD_INPUT') {
    super(code, message);
  }
}
