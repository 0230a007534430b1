// The CLI's exit status comes from the error's code, in one place (issue 12 §4).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AkaError } from '../aka/errors.ts';
import { SecAgreeError } from '../secagree/errors.ts';
import { SipParseError } from '../sip/errors.ts';
import { InputError } from '../util/errors.ts';
import { EXIT_BAD_INPUT, EXIT_CHECK_FAILED, EXIT_INTERNAL, exitCodeFor } from './output.ts';

test('exitCodeFor: bad input 2, a failed check 1, a bug 70', () => {
  assert.equal(exitCodeFor(new InputError('--k: not hex')), EXIT_BAD_INPUT);
  assert.equal(exitCodeFor(new SipParseError('SIP_BAD_HEADER', 'x')), EXIT_BAD_INPUT);
  assert.equal(exitCodeFor(new SecAgreeError('SECAGREE_SYNTAX', 'x')), EXIT_BAD_INPUT);
  assert.equal(exitCodeFor(new SecAgreeError('SECAGREE_NO_COMMON_ALG', 'x')), EXIT_CHECK_FAILED);
  assert.equal(exitCodeFor(new AkaError('AKA_MAC_FAILURE', 'x')), EXIT_CHECK_FAILED);
  assert.equal(exitCodeFor(new TypeError('bug')), EXIT_INTERNAL);
  assert.equal(exitCodeFor('a string'), EXIT_INTERNAL);
});
